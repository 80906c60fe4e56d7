"""One command-line convention for every task: `-i/--inventory` where a task
reads the inventory, and `invoke TASK --help` that prints the task's help even
when the task takes a positional argument."""
from __future__ import annotations

from typing import Any

from invoke import Task
from invoke import task as invoke_task
from invoke.parser.parser import ParseMachine

INVENTORY = "inventory"


class BkopsTask(Task):
    """A task whose `inventory` argument is always `-i/--inventory`: no other argument takes `-i`."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        if name == INVENTORY:
            opts = super().arg_opts(name, default, set(taken_names) | set(name))
            opts["names"] = [INVENTORY, "i"]
            return opts
        return super().arg_opts(name, default, set(taken_names) | {"i"})


def task(*args, **kwargs):
    """invoke's @task, with BkopsTask."""
    kwargs.setdefault("klass", BkopsTask)
    return invoke_task(*args, **kwargs)


# Invoke hands the next word to a task's missing positional argument before it looks for flags, so
# `invoke add-client --help` would add a client named "--help". A help flag is never a positional value:
# treat it as the per-task help Invoke already supports (`invoke provision --help`).
_handle = ParseMachine.handle


def _handle_help_first(self: ParseMachine, token: str) -> None:
    if (token in ("--help", "-h") and self.context is not None and token not in self.context.flags
            and self.context.missing_positional_args and self.initial is not None and token in self.initial.flags):
        self.initial.flags[token].value = self.context.name
        for arg in self.context.missing_positional_args:  # the task will not run: help is printed instead
            arg.value = ""
        return
    _handle(self, token)


ParseMachine.handle = _handle_help_first


def main() -> None:
    """The `bkops` command: Invoke's command line over the product's tasks, from any directory."""
    from invoke import Program

    from . import __version__
    from .tasks import ns

    Program(namespace=ns, name="bkops", binary="bkops", version=__version__).run()
