"""Build insights from BuildKit's own build history (the history API, `buildctl debug histories`): per host,
the builds of a window (count, failures, median and p95 duration, cache hit ratio of steps), and who built
them: the client whose certificate made the Solve call that carried each build (the gateway's audit trail).

Values in a record come from clients (an image name, a target): they are data, printed escaped, never run."""
from __future__ import annotations

import datetime as dt
import json
import math
import re
import statistics
from dataclasses import dataclass
from typing import Any

from buildkit_ops.engine.shell import quote
from buildkit_ops.roles.gateway.exports import SOLVE, SOLVE_STARTED, AuditLine, log_window

# One JSON array per record; every string through `json`, so a hostile target cannot break a line.
FORMAT = ('[{{json .Record.Ref}},{{json .Record.CreatedAt}},{{json .Record.CompletedAt}},'
          '{{.Record.NumCachedSteps}},{{.Record.NumTotalSteps}},'
          '{{if .Record.Error}}{{.Record.Error.Code}}{{else}}0{{end}},'
          '{{json (index .Record.ExporterResponse "image.name")}},{{json (index .Record.FrontendAttrs "target")}}]')


def history_snippet(ctl: str, section: str = "history") -> str:
    """Facts snippet: every build record a buildkitd keeps (see buildkit.history in the inventory)."""
    return f"echo @@{section}; {ctl} debug histories --format {quote(FORMAT)} 2>/dev/null || true"


@dataclass
class Build:
    ref: str
    created: dt.datetime
    completed: dt.datetime | None       # None: still running
    cached: int
    total: int
    failed: bool
    image: str
    target: str
    client: str | None = None           # the client whose Solve call carried it, when known

    @property
    def seconds(self) -> float | None:
        return (self.completed - self.created).total_seconds() if self.completed else None

    def row(self) -> dict[str, Any]:
        return {"ref": self.ref, "client": self.client, "started": self.created.isoformat(),
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "steps_cached": self.cached, "steps_total": self.total,
                "result": "running" if self.completed is None else ("failed" if self.failed else "ok"),
                "image": self.image or None, "target": self.target or None}


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    s = str(value).replace("Z", "+00:00")
    m = re.fullmatch(r"([^.]+)\.([0-9]+)(.*)", s)
    if m:  # Go prints nanoseconds; Python takes microseconds
        s = f"{m.group(1)}.{m.group(2)[:6]}{m.group(3)}"
    return dt.datetime.fromisoformat(s)


def parse(text: str) -> list[Build]:
    """Records from history_snippet's output (lines that are not a record are skipped), oldest first."""
    out = []
    for line in text.splitlines():
        try:
            ref, created, completed, cached, total, code, image, target = json.loads(line)
            when = _time(created)
        except (ValueError, TypeError):
            continue
        if when is None:
            continue
        out.append(Build(str(ref), when, _time(completed), int(cached), int(total), int(code) != 0,
                         str(image or ""), str(target or "")))
    return sorted(out, key=lambda b: b.created)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile of sorted-able values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


@dataclass
class Window:
    """The builds started in a window of time."""
    builds: int
    failed: int
    running: int
    median_seconds: float | None
    p95_seconds: float | None
    cache_hit_ratio: float | None        # cached steps / all steps
    clients: dict[str, int]              # builds per client, busiest first


def window(builds: list[Build], since: dt.timedelta, now: dt.datetime) -> Window:
    """The builds started within `since` before `now`: count, failures, running, median and p95 seconds of the
    finished ones, the cache hit ratio of their steps, and the count per client (busiest first)."""
    chosen = [b for b in builds if b.created >= now - since]
    done = [b.seconds for b in chosen if b.seconds is not None]
    total = sum(b.total for b in chosen)
    per_client: dict[str, int] = {}
    for b in chosen:
        key = b.client or "unknown"
        per_client[key] = per_client.get(key, 0) + 1
    return Window(len(chosen), sum(1 for b in chosen if b.failed and b.completed),
                  sum(1 for b in chosen if b.completed is None),
                  round(statistics.median(done), 3) if done else None,
                  round(percentile(done, 95), 3) if done else None,
                  round(sum(b.cached for b in chosen) / total, 3) if total else None,
                  dict(sorted(per_client.items(), key=lambda kv: (-kv[1], kv[0]))))


WINDOWS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7)}


def summary(builds: list[Build], now: dt.datetime) -> dict[str, Window]:
    return {name: window(builds, span, now) for name, span in WINDOWS.items()}


# ------------------------------------------------------------------ who built it


def solves_snippet(seconds: int = 14 * 86400) -> str:
    """Facts snippet: the Solve calls (each logged when it ended) and Solve starts of the gateway's audit trail
    of the last `seconds` (two weeks by default; what Docker keeps of the log, 5 x 20 MB, bounds how far back
    that reaches), the newest 50,000, read from the log's end back to the window's start and no further."""
    window = log_window(seconds, containing=(f'method="{SOLVE}"',), starting=(f"{SOLVE_STARTED} ",), newest=50000)
    return f"echo @@solves\n{{\n{window}}} 2>/dev/null || true"


# A Solve's start (HAProxy's clock, in milliseconds) and buildkitd's record of it (nanoseconds) are read on one
# host's clock; buildkitd stamps the record a moment after the call reached it, never before.
SLACK = dt.timedelta(milliseconds=5)


def attribute(builds: list[Build], calls: list[AuditLine], owners: dict[str, str] | None = None) -> None:
    """Give each build to the client whose Solve started it: by its ref where the gateway logged it (`owners`,
    from the gateway's ownership check: also a build still running). Otherwise, for the lines of gateways older
    than that, a finished build goes to the client whose Solve call carried it: the call that was running when
    buildkitd stamped the record's start, and of those the one that reached buildkitd last (after its wait for the
    client's build limit), as buildkitd stamps a record as soon as the call reaches it. Two clients behind one
    address are told apart: the name is the certificate's. A build whose call is no longer in the trail, or
    still running (a call is logged when it ends), keeps client None."""
    spans = []
    for c in calls:
        if c.method != SOLVE:
            continue
        ended = _time(c.ended)
        began = _time(c.started)
        if began is None or ended is None:
            continue
        spans.append((began + dt.timedelta(milliseconds=c.waited_ms), ended, c.client))
    for b in builds:
        b.client = (owners or {}).get(b.ref)
        if b.client is not None or b.completed is None:
            continue
        running = [s for s in spans if s[0] - SLACK <= b.created <= s[1] + SLACK]
        if running:
            b.client = max(running, key=lambda s: s[0])[2]
