"""Facts travel as one shell script per host: every role's facts.sh run in parallel on the host, each printing
`@@name` sections, split again here."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from buildkit_ops.engine.contract import Role
from buildkit_ops.engine.shell import quote


def facts_snippet(role: Role[Any, Any, Any], target: Any, item: Any = None, prefix: str = "") -> str:
    """The role's facts.sh, with its values (the target's, then its instance's item's) as quoted shell variables
    in front. An instance's sections are printed under its prefix (`@@buildkitd[red].container`): every instance
    of a role runs the same facts.sh in the same command."""
    values = {**role.fact_env(target), **role.item_env(item)}
    script = "".join(f"{k}={quote(v)}\n" for k, v in values.items()) + role.facts_script
    if not prefix:
        return script
    replacement = re.sub(r"([/&\\])", r"\\\1", prefix)
    return "{\n" + script.strip() + "\n} | sed " + quote(f"s/^@@/@@{replacement}/")


def own_sections(got: dict[str, str], prefix: str) -> dict[str, str]:
    """The sections one instance printed (under its prefix), by their own names."""
    if not prefix:
        return got
    return {k[len(prefix):]: v for k, v in got.items() if k.startswith(prefix)}


def sections(output: str) -> dict[str, str]:
    """Split facts output into sections: a line '@@name' starts section `name`."""
    out: dict[str, list[str]] = {}
    cur = None
    for line in output.splitlines():
        if line.startswith("@@"):
            cur = line[2:].strip()
            out[cur] = []
        elif cur is not None:
            out[cur].append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


FACTS_CACHE = (Path(__file__).parent / "facts_cache.sh").read_text()


def parallel(snippets: list[str]) -> str:
    """One shell script that runs the snippets at once and prints their outputs in order. The snippets may
    use `bkops_cached` (facts_cache.sh)."""
    script = FACTS_CACHE + 'T=$(mktemp -d)\n'
    snippets = [s for s in snippets if s.strip()]   # (an empty subshell is a syntax error)
    for i, snip in enumerate(snippets):
        script += f"( {snip.strip()}\n) > \"$T/{i}\" 2>/dev/null &\n"
    script += "wait\n" + "".join(f'cat "$T/{i}"\n' for i in range(len(snippets))) + 'rm -rf "$T"\n'
    return script
