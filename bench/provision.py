#!/usr/bin/env python3
"""Benchmarks on the lab. Prints figures; asserts nothing.

provision (50 ms of round-trip latency between this machine and build1, 25 ms
each way, bench/latency.py, so the figures reflect a real droplet):
  - fresh provision time of a droplet whose packages are already present (build1
    replaced by a new droplet, the roles' packages installed beforehand, untimed):
    the image upload, files, firewall and buildkitd
  - fresh provision time of a new droplet that lacks them, how many apt
    transactions it made (/var/log/apt/history.log) and the package part (the
    difference of the two)
  - no-op re-run time, and how many remote commands it ran
  - one `ssh build1 true` (OpenSSH, new connection), and the no-op/ssh ratio
clients (no added latency: the lab's bridge):
  - on laptop, a cached rebuild through build1 against the same cached rebuild
    with laptop's own BuildKit (the docker driver of its engine), as a ratio
  - the first build of a second client (laptop2) of a project laptop just
    built: how many steps CACHED, how long

Warning: it replaces build1 with a fresh droplet (and provisions it again), and
adds then removes laptop2 as a client.
Usage: .venv/bin/python bench/provision.py [--runs N] [--only provision|clients]
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

from lab.buildx_progress import step_states  # noqa: E402
from lab.machines import Lab  # noqa: E402

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


CLIENT_PROJECT = """FROM {reg}/lab/busybox:latest
RUN echo {nonce} > /nonce && dd if=/dev/urandom of=/blob bs=1M count=8 2>/dev/null && sleep 2
RUN sha256sum /blob > /blob.sha && sleep 1
COPY app.txt /app.txt
"""


def lab_build(lab: Lab, machine: str, builder: str, where: str) -> tuple[float, str]:
    t0 = time.monotonic()
    r = lab.run(machine, f"docker buildx build --builder {builder} --progress plain {where}", capture=True)
    if r.returncode:
        raise SystemExit(f"build on {machine} with {builder} failed:\n{r.stderr[-2000:]}")
    return time.monotonic() - t0, r.stderr


def bench_clients(lab: Lab, runs: int) -> None:
    import secrets
    reg = lab.status()["registry"]
    for args in (["provision"], ["add-client", "laptop"], ["add-client", "laptop2", "--address",
                                                            lab.address("laptop2")]):
        _, r = timed([sys.executable, "-m", "invoke", *args])
        if r.returncode:
            raise SystemExit(f"invoke {' '.join(args)} failed:\n{r.stderr}")
    try:
        nonce = secrets.token_hex(8)
        for m in ("laptop", "laptop2"):
            lab.run(m, f"docker login -u {reg['username']} --password-stdin {reg['address']}", capture=True,
                    input=reg["password"])
            lab.run(m, "rm -rf /root/bench && mkdir -p /root/bench && cat > /root/bench/Dockerfile && "
                       "echo bench > /root/bench/app.txt", capture=True,
                    input=CLIENT_PROJECT.format(reg=reg["address"], nonce=nonce))
        first, _ = lab_build(lab, "laptop", "buildkit-ops", "/root/bench")
        lab_build(lab, "laptop", "default", "/root/bench")  # warm laptop's own BuildKit too
        remote = statistics.median(lab_build(lab, "laptop", "buildkit-ops", "/root/bench")[0] for _ in range(runs))
        local = statistics.median(lab_build(lab, "laptop", "default", "/root/bench")[0] for _ in range(runs))
        second, out = lab_build(lab, "laptop2", "buildkit-ops", "/root/bench")
        steps = step_states(out)  # the project's RUN and COPY steps -> CACHED or DONE
        cached = sum(1 for v in steps.values() if v == "CACHED")
    finally:
        timed([sys.executable, "-m", "invoke", "remove-client", "laptop2"])
    print(f"laptop, first build through build1          : {first:.2f} s")
    print(f"laptop, cached rebuild through build1 (median): {remote:.2f} s")
    print(f"laptop, cached rebuild with its own BuildKit  : {local:.2f} s")
    print(f"remote / local ratio                          : {remote / local:.2f}")
    print(f"laptop2, first build of the same project      : {second:.2f} s, "
          f"{cached} of {len(steps)} RUN/COPY steps CACHED")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="no-op runs and ssh runs to take the median of")
    ap.add_argument("--only", choices=["provision", "clients"], help="run one part only")
    args = ap.parse_args()
    lab = Lab()
    lab.up(log=lambda m: print(m, file=sys.stderr))
    if args.only != "clients":
        bench_provision(lab, args.runs)
    if args.only != "provision":
        bench_clients(lab, args.runs)


PACKAGES = "conntrack logrotate"   # what build1's roles installed on a new droplet before the gateway (now: none)


def apt_transactions(lab: Lab) -> int:
    r = lab.run("build1", "grep -c '^Start-Date' /var/log/apt/history.log || true", capture=True)
    return int(r.stdout.strip() or 0)


def fresh_provision(lab: Lab, packages_present: bool) -> tuple[float, dict, int]:
    """A new build1 provisioned at 50 ms RTT: seconds, its result, and the apt transactions it made."""
    lab.reset("build1")
    if packages_present:
        r = lab.run("build1", f"apt-get -qq update && DEBIAN_FRONTEND=noninteractive apt-get install -qq -y "
                              f"--no-install-recommends {PACKAGES} >/dev/null", capture=True)
        if r.returncode != 0:
            raise SystemExit(f"preinstall failed: {r.stderr}")
    before = apt_transactions(lab)
    delay = add_latency(lab, "build1")
    try:
        time.sleep(0.5)
        secs, doc = provision()
    finally:
        for p in delay:
            p.terminate()
            p.wait()
    return secs, doc, apt_transactions(lab) - before


def bench_provision(lab: Lab, runs: int) -> None:
    present, first, _ = fresh_provision(lab, packages_present=True)
    missing, _, transactions = fresh_provision(lab, packages_present=False)
    delay = add_latency(lab, "build1")
    try:
        time.sleep(0.5)
        rtt = ping_rtt(lab)
        noops = [provision() for _ in range(runs)]
        sshs = [ssh_true(lab) for _ in range(runs)]
    finally:
        for p in delay:
            p.terminate()
            p.wait()
    noop = statistics.median(s for s, _ in noops)
    ssh = statistics.median(sshs)
    cmds = {d["remote_commands"] for _, d in noops}
    changed = {d["changed"] for _, d in noops}
    print(f"latency added             : {2 * DELAY_MS} ms round trip (TCP connect measured {rtt * 1000:.0f} ms)")
    print(f"fresh provision, packages present: {present:.2f} s  ({first['changed']} changes, "
          f"{first['remote_commands']} remote commands, image upload included)")
    print(f"fresh provision, packages missing: {missing:.2f} s  ({transactions} apt transaction(s); package part "
          f"{missing - present:.2f} s: one apt-get update and one apt-get install of {PACKAGES})")
    print(f"no-op re-run (median of {runs}): {noop:.2f} s  (changes: {sorted(changed)}, remote commands: "
          f"{sorted(cmds)})")
    print(f"ssh build1 true (median)  : {ssh:.2f} s")
    print(f"no-op / ssh ratio         : {noop / ssh:.2f}")


if __name__ == "__main__":
    main()
