#!/usr/bin/env python3
"""Benchmark `invoke provision` on the lab, with 50 ms of round-trip latency
between this machine and build1 (25 ms each way, bench/latency.py), so the
figures reflect a real droplet. Prints:

  - fresh provision time (build1 replaced by a new droplet first)
  - no-op re-run time, and how many remote commands it ran
  - one `ssh build1 true` (OpenSSH, new connection), and the no-op/ssh ratio

Warning: it replaces build1 with a fresh droplet (and provisions it again).
Usage: .venv/bin/python bench/provision.py [--runs N]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from buildkit_ops.lab import Lab  # noqa: E402

DELAY_MS = 25


def timed(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    return time.monotonic() - t0, r


def provision() -> tuple[float, dict]:
    secs, r = timed([sys.executable, "-m", "invoke", "provision", "--host", "build1", "--json"])
    if r.returncode != 0:
        raise SystemExit(f"provision failed:\n{r.stderr}")
    return secs, json.loads(r.stdout)["hosts"]["build1"]


def ssh_true(lab: Lab) -> float:
    st = lab.status()
    secs, r = timed(["ssh", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={st['known_hosts']}",
                     "-o", "StrictHostKeyChecking=yes", "-i", st["ssh_key"], f"root@{lab.address('build1')}", "true"])
    if r.returncode != 0:
        raise SystemExit(f"ssh failed: {r.stderr}")
    return secs


def ping_rtt(lab: Lab) -> float:
    """A TCP handshake takes one round trip."""
    import socket
    t = []
    for _ in range(3):
        t0 = time.monotonic()
        socket.create_connection((lab.address("build1"), 22), timeout=5).close()
        t.append(time.monotonic() - t0)
    return min(t)


def add_latency(lab: Lab, machine: str) -> list[subprocess.Popen]:
    """DELAY_MS on each side of the link between this machine and a lab machine: 2 x DELAY_MS round trip."""
    pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", lab.container(machine)], capture_output=True,
                         text=True, check=True).stdout.strip()
    gateway = f"{lab.subnet}.1"
    here = subprocess.Popen([sys.executable, str(ROOT / "bench" / "latency.py"), lab.address(machine),
                             str(DELAY_MS), "7"])
    there = subprocess.Popen(["nsenter", "-t", pid, "-n", sys.executable, str(ROOT / "bench" / "latency.py"),
                              gateway, str(DELAY_MS), "8"])
    time.sleep(0.5)
    return [here, there]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="no-op runs and ssh runs to take the median of")
    args = ap.parse_args()
    lab = Lab()
    lab.up(log=lambda m: print(m, file=sys.stderr))
    lab.reset("build1")
    delay = add_latency(lab, "build1")
    try:
        time.sleep(0.5)
        rtt = ping_rtt(lab)
        fresh, first = provision()
        noops = [provision() for _ in range(args.runs)]
        sshs = [ssh_true(lab) for _ in range(args.runs)]
    finally:
        for p in delay:
            p.terminate()
            p.wait()
    noop = statistics.median(s for s, _ in noops)
    ssh = statistics.median(sshs)
    cmds = {d["remote_commands"] for _, d in noops}
    changed = {d["changed"] for _, d in noops}
    print(f"latency added             : {2 * DELAY_MS} ms round trip (TCP connect measured {rtt * 1000:.0f} ms)")
    print(f"fresh provision           : {fresh:.2f} s  ({first['changed']} changes, {first['remote_commands']} "
          f"remote commands)")
    print(f"no-op re-run (median of {args.runs}): {noop:.2f} s  (changes: {sorted(changed)}, remote commands: "
          f"{sorted(cmds)})")
    print(f"ssh build1 true (median)  : {ssh:.2f} s")
    print(f"no-op / ssh ratio         : {noop / ssh:.2f}")


if __name__ == "__main__":
    main()
