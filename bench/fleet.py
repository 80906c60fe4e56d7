#!/usr/bin/env python3
"""Fleet benchmark on the lab. Prints figures; asserts nothing.

With 50 ms of round-trip latency between this machine and every build host (bench/latency.py at both ends
of each link), for fleets of 1, 2, 4 and 8 build hosts (`lab.up --build-hosts 8`, fresh droplets each
time): the fresh provision of the whole fleet and its no-op re-run (median), each with its ratio to one
host, the remote commands and SSH connections per host, and the time of `update-clients` over the fleet.

Warning: it replaces build1..buildN with fresh droplets and leaves build3..build8 running
(`invoke lab.down` removes them).
Usage: .venv/bin/python bench/fleet.py [--sizes 1,2,4,8] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.machines import Lab  # noqa: E402

DELAY_MS = 25


def inventory(n: int) -> Path:
    """The shipped inventory with build hosts build1..buildN (and laptop as the client)."""
    data = yaml.safe_load((ROOT / "inventory.yml").read_text())
    data["all"]["children"]["buildhosts"]["hosts"] = {
        f"build{i}": {"address": f"10.77.0.{10 + i}", "names": [f"build{i}.lab"]} for i in range(1, n + 1)}
    path = ROOT / f".bench-fleet-{n}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def invoke(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True)
    return time.monotonic() - t0, r


def provision(inv: Path) -> tuple[float, dict]:
    secs, r = invoke("provision", "-i", str(inv), "--json")
    if r.returncode != 0:
        raise SystemExit(f"provision failed:\n{r.stderr[-3000:]}")
    return secs, json.loads(r.stdout)


def add_latency(lab: Lab, machines: list[str]) -> list[subprocess.Popen]:
    """DELAY_MS at each end of each link (this machine <-> a build host): 2 x DELAY_MS round trip."""
    procs = []
    for i, m in enumerate(machines):
        pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", lab.container(m)], capture_output=True,
                             text=True, check=True).stdout.strip()
        procs.append(subprocess.Popen([sys.executable, str(ROOT / "bench" / "latency.py"), lab.address(m),
                                       str(DELAY_MS), str(20 + i)]))
        procs.append(subprocess.Popen(["nsenter", "-t", pid, "-n", sys.executable,
                                       str(ROOT / "bench" / "latency.py"), f"{lab.subnet}.1", str(DELAY_MS), "8"]))
    time.sleep(1)
    return procs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,2,4,8", help="fleet sizes, comma-separated (at most 8)")
    ap.add_argument("--runs", type=int, default=3, help="no-op runs to take the median of")
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    lab = Lab()
    lab.up(log=lambda m: print(m, file=sys.stderr), build_hosts=max(sizes))
    rows = []
    for n in sizes:
        hosts = [f"build{i}" for i in range(1, n + 1)]
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(lab.reset, hosts))
        inv = inventory(n)
        delay = add_latency(lab, hosts)
        try:
            fresh, first = provision(inv)
            noops = [provision(inv) for _ in range(args.runs)]
            _, r = invoke("add-client", "laptop", "-i", str(inv))
            if r.returncode != 0:
                raise SystemExit(f"add-client failed:\n{r.stderr[-3000:]}")
            update, r = invoke("update-clients", "-i", str(inv))
            if r.returncode != 0:
                raise SystemExit(f"update-clients failed:\n{r.stderr[-3000:]}")
        finally:
            for p in delay:
                p.terminate()
                p.wait()
            inv.unlink(missing_ok=True)
        noop = statistics.median(s for s, _ in noops)
        cmds = sorted({h["remote_commands"] for _, d in noops for h in d["hosts"].values()})
        fresh_cmds = sorted({h["remote_commands"] for h in first["hosts"].values()})
        rows.append((n, fresh, noop, cmds, fresh_cmds, update))
    one_fresh, one_noop = rows[0][1], rows[0][2]
    print(f"latency added: {2 * DELAY_MS} ms round trip to every build host; one SSH connection per host per run")
    print("hosts  fresh provision (ratio)  no-op re-run (ratio)  commands/host fresh, no-op  update-clients")
    for n, fresh, noop, cmds, fresh_cmds, update in rows:
        print(f"{n:5}  {fresh:8.2f} s ({fresh / one_fresh:4.2f})       {noop:6.2f} s ({noop / one_noop:4.2f})"
              f"      {fresh_cmds}, {cmds}            {update:5.2f} s")


if __name__ == "__main__":
    main()
