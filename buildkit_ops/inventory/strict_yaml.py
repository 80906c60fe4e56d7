"""YAML as an inventory must be read: a key given twice is an error (YAML's loaders keep the last one silently, so
`step_network: sandboxed` then `step_network: host` would load as host), and so are aliases (`*name`, and the
merge key `<<: *name` that needs them): nothing in an inventory needs them, and nested ones make loading
exponential."""
from __future__ import annotations

from typing import Any

import yaml


class StrictYAMLError(yaml.YAMLError):
    def __init__(self, problem: str, mark: yaml.Mark | None):
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


class _Loader(yaml.SafeLoader):
    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()   # type: ignore[no-untyped-call]
            raise StrictYAMLError(f"uses an alias (*{event.anchor}); aliases are not allowed in an inventory",
                                  event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise StrictYAMLError(f"the key {key!r} is given twice in the same mapping", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def load(text: str) -> Any:
    return yaml.load(text, Loader=_Loader)   # (a SafeLoader: no Python objects)
