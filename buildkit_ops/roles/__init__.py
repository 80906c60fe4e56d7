"""Roles: one concern each, in the shape of Ansible's roles/<name>/.

A role is a folder here holding
  facts.sh      what the role needs to know about the host, printed as `@@name` sections; the values it needs
                (a port, an image) come in as environment variables from `fact_env`, quoted. All roles' facts
                run in ONE batched SSH round trip, and each role parses its own sections once (`parse`);
  __init__.py   `ROLE`: the role's managed files (`files`, rendered from its templates/), its pure
                `plan(ctx, facts, files)` from wanted state and facts to Steps (each `ok` or `changed`, with
                the script that changes it), its handlers (run once at the end when a step notified them;
                each owns its own protocol with the host), and optionally a `verify` after the changes;
  templates/    Jinja templates of its files (rendered by buildkit_ops.render, escaped for their language).

The runner (buildkit_ops/runner.py) gathers, plans, shows or applies, runs handlers and verifies for the
ordered list below, and names no role. Adding a role is a folder and one line in ORDER.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..inventory import BuildHost, Inventory
from ..pki import Leaf
from ..render import MISSING, File, FileState, fix_mode_script, write_file_script
from ..shell import quote

# The roles, in the order their changes are applied (the firewall lets SSH in before it is enabled; buildkitd
# needs the engine, and detects the emulators when it starts).
ORDER = ["engine", "firewall", "emulation", "buildkitd", "prune", "connections"]


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
    file: File | None = None         # the managed file whose content this step writes (check mode diffs it)


@dataclass
class Context:
    """The wanted state of one host, prepared on the operator machine: everything a role plans from."""
    inv: Inventory
    host: BuildHost
    tls: dict[str, bytes]            # ca.crt (the bundle servers trust), server.crt, server.key
    image_id: str | None             # the image inside image_archive, if any
    clients: dict[str, str]          # client name -> source address allowed to reach the BuildKit port
    drop_clients: bool | set[str] = False
    wait: int = 300                  # seconds a restart waits for running builds
    force: bool = False
    operator: Leaf | None = None     # the operator's client certificate for proofs over mutual TLS
    rendered: dict[str, list[File]] = field(default_factory=dict)   # each role's files, rendered once


class PlanError(Exception):
    """Known before any change: the plan cannot be carried out (unsupported OS, port taken, ...)."""


class HandlerFailed(Exception):
    """A handler did not do its job; the message says why and what to do."""

    def __init__(self, message: str, detail: str = ""):
        super().__init__(message)
        self.detail = detail


@dataclass
class HandlerResult:
    detail: str
    extra_steps: list[tuple[str, str]] = field(default_factory=list)   # (name, detail) reported as changed
    sections: dict[str, str] = field(default_factory=dict)             # fresh facts printed by the handler


class Handler:
    name = ""

    def script(self, ctx: Context) -> str:
        raise NotImplementedError

    def result(self, ctx: Context, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        raise NotImplementedError


class Role:
    name = ""
    handlers: dict[str, Handler] = {}
    verify_title = "verified"

    @property
    def facts_file(self) -> str:
        path = Path(importlib.import_module(type(self).__module__).__file__ or "").parent / "facts.sh"
        return path.read_text() if path.exists() else ""

    @property
    def facts_script(self) -> str:
        return self.facts_file

    @property
    def sentinel(self) -> str | None:
        """The first section the role's facts.sh prints, always: missing from the output, the snippet did not
        run at all."""
        m = re.search(r"^echo @@(\w+)", self.facts_file, re.M)
        return m.group(1) if m else None

    def fact_env(self, ctx: Context) -> dict[str, str]:
        return {}

    def parse(self, sections: dict[str, str]) -> Any:
        return None

    def files(self, ctx: Context) -> list[File]:
        """The files the role manages on the host, rendered (pure). Callers use managed()."""
        return []

    def managed(self, ctx: Context) -> list[File]:
        """files(ctx), rendered once per host run (the runner, the plan and a handler all need them)."""
        if self.name not in ctx.rendered:
            ctx.rendered[self.name] = self.files(ctx)
        return ctx.rendered[self.name]

    def plan(self, ctx: Context, facts: Any, files: dict[str, FileState]) -> list[Step]:
        return []

    def info(self, facts: Any) -> dict[str, Any]:
        """What the role tells of the host in the result (e.g. buildkitd's platforms)."""
        return {}

    def start_probe(self, ctx: Context, sess: Any) -> Any:
        """Begin a check that overlaps with reading the facts (e.g. a TLS handshake); given back to verify."""
        return None

    def verify(self, ctx: Context, facts: Any, sess: Any, probe: Any, restarted: bool) -> str | None:
        """After the changes (never in check mode): prove the role's service works; the detail, or None."""
        return None


def file_steps(role: str, files: list[File], states: dict[str, FileState], notify: list[str],
               name: Callable[[File], str] = lambda f: f.path) -> list[Step]:
    """One step per managed file: ok when checksum, mode and owner match; else written atomically (new or other
    content) or fixed with chmod/chown (mode or owner only: the content never travels again)."""
    steps = []
    for f in files:
        st = states.get(f.path, MISSING)
        if st.matches(f):
            steps.append(Step(role, name(f), False))
        elif st.sha256 == f.sha256:
            steps.append(Step(role, name(f), True, f"mode {st.mode} {st.owner}", script=fix_mode_script(f),
                              notify=list(notify)))
        else:
            steps.append(Step(role, name(f), True, "new" if st is MISSING else "content",
                              script=write_file_script(f), notify=list(notify), file=f))
    return steps


def unit_steps(role: str, files: list[File], states: dict[str, FileState], unit: str, running: bool,
               title: str, ok_detail: str) -> list[Step]:
    """A systemd unit's files, then the unit enabled and running: (re)started when a file changed or it is not
    running (daemon-reload first)."""
    steps = file_steps(role, files, states, [], name=lambda f: f.path.rsplit("/", 1)[1])
    if running and not any(s.changed for s in steps):
        return steps + [Step(role, title, False, ok_detail)]
    return steps + [Step(role, title, True, "enable and (re)start",
                         script=f"systemctl daemon-reload\nsystemctl enable -q {unit}\nsystemctl restart {unit}\n")]


def load(order: list[str] | None = None) -> list[Role]:
    return [importlib.import_module(f"{__name__}.{name}").ROLE for name in (order or ORDER)]


def facts_snippet(role: Role, ctx: Context) -> str:
    """The role's facts.sh, with its values as quoted shell variables in front."""
    env = "".join(f"{k}={quote(v)}\n" for k, v in role.fact_env(ctx).items())
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
    for i, snip in enumerate(snippets):
        script += f"( {snip.strip()}\n) > \"$T/{i}\" 2>/dev/null &\n"
    script += "wait\n" + "".join(f'cat "$T/{i}"\n' for i in range(len(snippets))) + 'rm -rf "$T"\n'
    return script
