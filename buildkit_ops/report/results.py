"""Results of runs as they happen: each step on stderr (colour only on a terminal), a recap per target, and the
same as JSON on stdout for scripts."""
from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape

from buildkit_ops.engine.contract import Outcome, instance_key
from buildkit_ops.report.progress import Transfers

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
_lock = threading.Lock()

# What reaches the operator's terminal from elsewhere (a host's stderr, a process name, a client's image name)
# may hold escape sequences or bidi overrides that rewrite what the terminal shows: they are shown as escapes.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def safe(text: str) -> str:
    """Text safe to print on a terminal: control characters and bidi controls as \\xNN / \\uNNNN, line breaks
    and tabs kept."""
    return _UNSAFE.sub(lambda m: repr(m.group(0))[1:-1] if ord(m.group(0)) < 0x100 else
                       f"\\u{ord(m.group(0)):04x}", text)


def shown(text: str) -> str:
    """safe(text) with Rich's markup escaped: for Rich's print."""
    return escape(safe(text))


STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "skipped": "dim", "would change": "yellow",
         "pending": "magenta"}


@dataclass
class StepResult:
    """One step as it happened: `status` is ok, changed, would change, failed, skipped or pending (a change outside
    the run's roles, left for a provision)."""
    role: str
    name: str
    status: str
    detail: str = ""
    outcome: Outcome | None = None
    instance: str | None = None          # the role's instance (None: its default one)

    @property
    def who(self) -> str:
        """The role, and its instance when it is not the default one: buildkitd[red]."""
        return instance_key(self.role, self.instance)

    def as_json(self) -> dict[str, str | None]:
        return {"role": self.role, "instance": self.instance, "name": self.name, "status": self.status,
                "detail": self.detail}


@dataclass
class HostResult:
    """What a run did on one target (a build host or a client)."""
    host: str
    steps: list[StepResult] = field(default_factory=list)
    error: str | None = None
    unreachable: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        c = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0, "pending": 0}
        for s in self.steps:
            c["changed" if s.status in ("changed", "would change") else s.status] += 1
        if self.error and not any(s.status == "failed" for s in self.steps):
            c["failed"] += 1
        return c

    @property
    def failed(self) -> bool:
        return self.error is not None

    def step_for(self, outcome: Outcome) -> StepResult | None:
        """The step a role marked as deciding this outcome (e.g. who may reach the BuildKit port)."""
        return next((s for s in self.steps if s.outcome is outcome), None)

    def changed_by(self, outcome: Outcome) -> bool:
        """A step of that outcome changed something in this run."""
        return any(s.outcome is outcome and s.status == "changed" for s in self.steps)

    @property
    def restarted(self) -> bool:
        """A service that serves builds was restarted in this run."""
        return self.changed_by(Outcome.RESTART)

    @property
    def reloaded(self) -> bool:
        """A service read new files (certificates, CRL, clients) without a restart in this run."""
        return self.changed_by(Outcome.RELOAD)

    @property
    def changed_in_place(self) -> bool:
        """A service took a change while running (the gateway's maps, its CRL): no restart, no reload."""
        return self.changed_by(Outcome.IN_PLACE)

    @property
    def firewall_changed(self) -> bool:
        return self.changed_by(Outcome.FIREWALL)


class Reporter:
    def __init__(self, quiet: bool = False, progress: bool = True):
        """progress: show how long work is doing as it goes (off for --json: a script reads the result)."""
        self.quiet, self.progress = quiet, progress and not quiet
        self._transfers = Transfers(err)

    def transfer(self, result: HostResult, what: str, total: int) -> Callable[[int], None] | None:
        """A tick for a long transfer's progress (None when there is no progress to show)."""
        return self._transfers.start(result.host, what, total) if self.progress else None

    def step(self, result: HostResult, role: str, name: str, status: str, detail: str = "",
             outcome: Outcome | None = None, instance: str | None = None) -> None:
        done = StepResult(role, name, status, detail, outcome, instance)
        result.steps.append(done)
        if self.quiet:
            return
        with _lock:
            style = STYLE.get(status, "")
            d = f"  [dim]{shown(detail)}[/dim]" if detail else ""
            err.print(f"{shown(result.host):10} [{style}]{status:12}[/{style}] {shown(done.who)}: {shown(name)}{d}")

    def note(self, result: HostResult, role: str, text: str) -> None:
        """How a long step is doing, as it goes (a restart waiting for builds): shown, not recorded."""
        if not self.progress:
            return
        with _lock:
            err.print(f"{shown(result.host):10} [dim]{'waiting':12} {shown(role)}: {shown(text)}[/dim]")

    def text(self, text: str) -> None:
        if self.quiet:
            return
        with _lock:
            err.print(shown(text), soft_wrap=True)

    def fail(self, result: HostResult, message: str, unreachable: bool = False) -> None:
        result.error = message
        result.unreachable = unreachable
        with _lock:
            err.print(f"{shown(result.host):10} [bold red]{'unreachable' if unreachable else 'failed':12}[/bold red] "
                      f"{shown(message)}")

    def recap(self, results: list[HostResult], check: bool = False) -> None:
        with _lock:
            err.print(f"\n[bold]RECAP{' (check mode: nothing was changed)' if check else ''}[/bold]")
            for r in results:
                c = r.counts
                changed_word = "would_change" if check else "changed"
                line = (f"{r.host:10} : ok={c['ok']} {changed_word}={c['changed']} "
                        f"unreachable={int(r.unreachable)} failed={c['failed']}"
                        + (f" skipped={c['skipped']}" if c["skipped"] else "")
                        + (f" pending={c['pending']}" if c["pending"] else ""))
                style = "red" if r.failed else ("yellow" if c["changed"] else "green")
                verdict = "" if r.failed or c["changed"] else "  no changes"
                if c["pending"] and not r.failed:
                    verdict += f"  ({c['pending']} pending: run `invoke provision --host {r.host}`)"
                err.print(f"[{style}]{escape(line)}[/{style}]{verdict}")


def emit_json(results: list[HostResult], **extra: Any) -> None:
    doc = {"hosts": {r.host: {**r.counts, "unreachable": r.unreachable, "error": r.error,
                              "steps": [s.as_json() for s in r.steps], **r.info} for r in results},
           "changed": any(r.counts["changed"] for r in results),
           "failed": any(r.failed for r in results), **extra}
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()
