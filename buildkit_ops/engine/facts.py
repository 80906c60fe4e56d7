"""Facts travel as one shell script per host: every role's facts.sh run in parallel on the host, each printing
`@@name` sections, split again here."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from buildkit_ops.engine.contract import Role
from buildkit_ops.engine.shell import quote


def facts_snippet(role: Role[Any, Any, Any], target: Any) -> str:
    """The role's facts.sh, with its values as quoted shell variables in front."""
    env = "".join(f"{k}={quote(v)}\n" for k, v in role.fact_env(target).items())
    return env + role.facts_script


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
