"""The role contract: what a role is to the runner (see roles/__init__.py and docs/roles.md for the whole
picture). A role's facts are parsed once into its own typed value, its plan is a pure function from wanted
state and facts to Steps, its handlers run once at the end when a step notified them, and verify proves its
service works."""
from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_ops.engine.render import MISSING, File, FileState, fix_mode_script, write_file_script
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.pki.certs import Leaf


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
