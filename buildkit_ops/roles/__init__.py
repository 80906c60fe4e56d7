"""Roles: one concern each, in the shape of Ansible's roles/<name>/.

A role module has
  FACTS (or facts(...)): a shell snippet that prints what the role needs to know
      about the host; all roles' snippets run in ONE batched SSH round trip;
  plan(...): a pure function from (wanted state, facts) to Steps: what is
      already right (ok) and what must change (changed, with the shell script
      and, for files, a unified diff). Planning never touches the host, so it is
      unit-tested from tables of facts;
  handlers: steps that run once at the end, only when a step notified them
      (e.g. recreate buildkitd when its config or certificates changed).
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Step:
    role: str
    name: str
    changed: bool
    detail: str = ""
    script: str = ""                 # shell run on the host (as root) when changed
    diff: str | None = None          # unified diff for check mode
    notify: list[str] = field(default_factory=list)
    upload: str | None = None        # local file piped into the script's stdin (e.g. docker load)


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


def parallel(snippets: list[str]) -> str:
    """One shell script that runs the snippets at once and prints their outputs in order."""
    script = 'T=$(mktemp -d)\n'
    for i, snip in enumerate(snippets):
        script += f"( {snip.strip()}\n) > \"$T/{i}\" 2>/dev/null &\n"
    script += "wait\n" + "".join(f'cat "$T/{i}"\n' for i in range(len(snippets))) + 'rm -rf "$T"\n'
    return script
