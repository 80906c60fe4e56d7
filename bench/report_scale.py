#!/usr/bin/env python3
"""`report` over 10,000 builds: the operator machine's share. Prints figures, asserts nothing; needs no lab.

What `report` does once each host has answered (flows/builds.py recent(), tasks.py report()): parse the build
history records (`buildctl debug histories`, one JSON line each), parse the gateway's audit trail of the window,
give each build to its client (by ref, from the Solve lines), and render the page. The inputs are made here in
the exact shapes those readers take: 10,000 records over 7 days on two hosts (5 % failed, 60 % of steps
cached, 1 to 300 s each), and one audit line per build's Solve (the format of roles/gateway/audit.py as
`docker logs --timestamps` gives it, ref included), plus four other calls per build. What is not measured:
the hosts' own listing of 10,000 records (a buildkitd keeps `buildkit.history_max_entries` of them; making
10,000 real ones takes hours of builds).
Usage: .venv/bin/python bench/report_scale.py [--builds 10000]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from buildkit_ops.flows.status_tree import Cache, HostStatus, Status  # noqa: E402
from buildkit_ops.insights.builds import attribute, parse  # noqa: E402
from buildkit_ops.report import html_report  # noqa: E402
from buildkit_ops.roles.gateway.audit import build_owners, parse_audit  # noqa: E402

GOAL = 5.0
HOSTS = ("build1", "build2")
METHODS = ("Status", "Session", "ListWorkers", "Info")


def records_and_trail(n: int, now: dt.datetime, host_index: int) -> tuple[str, str]:
    """n history lines of one host and the audit trail of their calls, oldest first."""
    rng = random.Random(host_index)
    history, trail = [], []
    for i in range(n):
        start = now - dt.timedelta(days=7) + dt.timedelta(seconds=i * 7 * 86400 / n)
        secs = rng.uniform(1, 300)
        end = start + dt.timedelta(seconds=secs)
        ref = f"h{host_index}r{i:08d}"
        total = rng.randint(3, 40)
        history.append(json.dumps([ref, start.isoformat().replace("+00:00", "Z"), end.isoformat().replace(
            "+00:00", "Z"), int(total * 0.6), total, 2 if rng.random() < 0.05 else 0, f"reg.example/app{i % 40}:1",
            ""]))
        client = f"dev{rng.randint(1, 229):03d}"
        for method, began, ms in [("Solve", start, int(secs * 1000))] + [(m, end, 5) for m in METHODS]:
            ended = began + dt.timedelta(milliseconds=ms)
            logged = ended.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ended.microsecond:06d}000Z"   # (Docker's time)
            stamp = began.strftime("%d/%b/%Y:%H:%M:%S.") + f"{began.microsecond // 1000:03d}"
            trail.append(f"{logged} {stamp} client={client} addr=10.77.1.{i % 250} role=developer "
                         f"method=\"/moby.buildkit.v1.Control/{method}\" result=ok status=200 ms={ms} in=900 "
                         f"out=9000 term=-- waited=- ref={ref if method == 'Solve' else '-'} session=s{i:08d}")
    return "\n".join(history) + "\n", "\n".join(trail) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--builds", type=int, default=10000)
    n = ap.parse_args().builds
    now = dt.datetime.now(dt.timezone.utc)
    inputs = {h: records_and_trail(n // len(HOSTS), now, i) for i, h in enumerate(HOSTS)}
    mb = sum(len(a) + len(b) for a, b in inputs.values()) / 1e6
    t0 = time.monotonic()
    builds = {}
    for host, (history, log) in inputs.items():
        records = parse(history)
        attribute(records, parse_audit(log), build_owners(log))
        builds[host] = [{**b.row(), "tenant": "default", "away_from": None}
                        for b in sorted(records, key=lambda b: b.created, reverse=True)]
    t1 = time.monotonic()
    st = Status(hosts={h: HostStatus(True, [], cache=Cache(5000, 80 << 30, 20 << 30, 500 << 30, 300 << 30,
                                                           100 << 30)) for h in HOSTS})
    page = html_report.page(st, builds, 7, now)
    t2 = time.monotonic()
    given = sum(1 for rows in builds.values() for b in rows if b["client"])
    print(f"{n} builds over 7 days on {len(HOSTS)} hosts ({mb:.1f} MB of records and audit lines read)")
    print(f"  parse records and trail, give each build its client: {t1 - t0:6.2f} s  ({given} of {n} given)")
    print(f"  render the page ({len(page) / 1e3:.0f} kB):                     {t2 - t1:6.2f} s")
    print(f"  report's work on the operator machine:                {t2 - t0:6.2f} s  (goal <= {GOAL} s with "
          f"the hosts' answers)")


if __name__ == "__main__":
    main()
