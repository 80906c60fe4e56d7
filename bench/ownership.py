#!/usr/bin/env python3
"""Ownership benchmark on the lab (builds are their owner's: the gateway's ownership.lua). Prints figures;
asserts nothing.

On build1 (provisioned), from buildctl inside buildkitd's container with the operator's certificate, through
the gateway: a cached rebuild (`buildctl build --frontend dockerfile.v0`: Solve, Status, Session, each checked)
with the ownership check in force and without it (the same haproxy.cfg with its check lines commented out,
put in force by a graceful reload), alternating blocks, median of N runs each, and their ratio; the gateway
worker's CPU time per 1,000 calls (calls counted in its audit trail); and its memory (RSS) before and after
1,000 build refs are claimed (1,000 Solves with refs of their own, sent by curl over one HTTP/2 connection).
The configuration is put back as it was at the end.
Usage: .venv/bin/python bench/ownership.py [--runs 6] [--slot c]
"""
from __future__ import annotations

import argparse
import base64
import statistics
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.machines import Lab  # noqa: E402

CFG = "/opt/buildkit-ops/gateway/haproxy.cfg"
GATEWAY = ("tcp://127.0.0.1:1234 --tlsservername build1 --tlscacert /tmp/bench/ca.crt "
           "--tlscert /tmp/bench/client.crt --tlskey /tmp/bench/client.key")
DOCKERFILE = "FROM scratch\nCOPY a.txt /a.txt\n"
CHECK_LINES = ("http-request wait-for-body time 10s if names_in_body", "http-request lua.check_owner")


def sh(lab: Lab, cmd: str, input: str | None = None) -> str:
    r = lab.run("build1", cmd, capture=True, input=input)
    if r.returncode != 0:
        raise SystemExit(f"failed on build1: {cmd}\n{r.stderr[-1500:]}")
    return r.stdout


def reload(lab: Lab) -> None:
    sh(lab, "docker kill -s USR2 buildkit-gateway >/dev/null; sleep 2")


def ownership(lab: Lab, on: bool) -> None:
    """Comment the check's lines out (off) or back in (on), and reload."""
    for line in CHECK_LINES:
        if on:
            sh(lab, f"sed -i 's|^    # OFF {line}$|    {line}|' {CFG}")
        else:
            sh(lab, f"sed -i 's|^    {line}$|    # OFF {line}|' {CFG}")
    reload(lab)


def worker_pid(lab: Lab) -> str:
    master = sh(lab, "docker inspect -f '{{.State.Pid}}' buildkit-gateway").strip()
    return sh(lab, f"pgrep -P {master} -n haproxy || pgrep -P {master} -n").strip()


def cpu_seconds(lab: Lab, pid: str) -> float:
    fields = sh(lab, f"cat /proc/{pid}/stat").rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100   # utime + stime, in clock ticks (100 a second)


def calls_logged(lab: Lab) -> int:
    return int(sh(lab, "docker logs buildkit-gateway 2>&1 | grep -c ' method=' || true").strip() or 0)


def rebuild(lab: Lab) -> float:
    t = time.monotonic()
    sh(lab, f"docker exec buildkitd buildctl --addr {GATEWAY} build --frontend dockerfile.v0 "
            f"--local context=/tmp/bench/proj --local dockerfile=/tmp/bench/proj >/dev/null 2>&1")
    return time.monotonic() - t


def grpc_solve(ref: str) -> bytes:
    """A Solve of `ref` naming a frontend buildkitd does not have: it is refused by buildkitd at once (a Solve
    with neither LLB nor a frontend would wait for a client-side frontend that never comes)."""
    message = b"".join(bytes([number << 3 | 2, len(value)]) + value
                       for number, value in ((1, ref.encode()), (6, b"none.v0")))
    return struct.pack(">BI", 0, len(message)) + message


def claim_refs(lab: Lab, n: int) -> None:
    """n Solves with refs of their own (no session; buildkitd refuses the frontend at once), over one connection."""
    blocks = []
    for i in range(n):
        body = base64.b64encode(grpc_solve(f"benchref{i:05d}")).decode()
        blocks.append((i, body))
    script = "".join(f"echo {b} | base64 -d > /tmp/bench/s{i}\n" for i, b in blocks)
    sh(lab, "sh -s", input=script)
    # (`next` resets every option of a transfer: each one names them all)
    each = ('http2\ncacert = "/tmp/bench/ca.crt"\ncert = "/tmp/bench/client.crt"\nkey = "/tmp/bench/client.key"\n'
            'header = "content-type: application/grpc"\nheader = "te: trailers"\nresolve = "build1:1234:127.0.0.1"\n'
            'output = "/dev/null"\nurl = "https://build1:1234/moby.buildkit.v1.Control/Solve"\n')
    config = "next\n".join(f'{each}data-binary = "@/tmp/bench/s{i}"\n' for i, _ in blocks)
    sh(lab, "cat > /tmp/bench/curl.cfg", input=config)
    sh(lab, "curl -sS --parallel --parallel-max 50 -K /tmp/bench/curl.cfg >/dev/null 2>&1 || true")
    claimed = int(sh(lab, "docker logs buildkit-gateway 2>&1 | grep -c 'ref=benchref' || true").strip() or 0)
    if claimed < n:
        raise SystemExit(f"only {claimed} of the {n} Solves reached the ownership check")


def rss_kb(lab: Lab, pid: str) -> int:
    return int(sh(lab, f"awk '/^VmRSS/ {{print $2}}' /proc/{pid}/status").strip())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--slot", default="", help="the lab to use: '' (the default lab), b or c (tests/suite.py)")
    args = ap.parse_args()
    lab = Lab.for_slot(args.slot)
    pki = ROOT / (f".pki-{args.slot}" if args.slot else ".pki")
    sh(lab, "mkdir -p /tmp/bench/proj && echo a > /tmp/bench/proj/a.txt && cat > /tmp/bench/proj/Dockerfile",
       input=DOCKERFILE)
    for name, src in (("ca.crt", "ca.crt"), ("client.crt", "operator/client.crt"),
                      ("client.key", "operator/client.key")):
        sh(lab, f"cat > /tmp/bench/{name} && chmod 600 /tmp/bench/{name}", input=(pki / src).read_text())
    sh(lab, "docker cp /tmp/bench buildkitd:/tmp/ >/dev/null")
    saved = sh(lab, f"cat {CFG}")
    try:
        rebuild(lab)                     # (the first build fills the cache)
        times: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, tuple[float, int]] = {True: (0.0, 0), False: (0.0, 0)}
        for _ in range(args.runs):
            for on in (True, False):
                ownership(lab, on)
                pid, calls = worker_pid(lab), calls_logged(lab)
                c0 = cpu_seconds(lab, pid)
                times[on].append(rebuild(lab))
                spent, n = cpu[on]
                cpu[on] = (spent + cpu_seconds(lab, pid) - c0, n + calls_logged(lab) - calls)
        ownership(lab, True)
        pid = worker_pid(lab)
        before = rss_kb(lab, pid)
        claim_refs(lab, 1000)
        after = rss_kb(lab, pid)
    finally:
        sh(lab, f"cat > {CFG}", input=saved)
        reload(lab)
    on, off = statistics.median(times[True]), statistics.median(times[False])
    print(f"cached rebuild through the gateway, median of {args.runs}: with ownership checks {on:.3f} s, "
          f"without {off:.3f} s, ratio {on / off:.3f}")
    for state, (spent, n) in cpu.items():
        print(f"gateway worker CPU {'with' if state else 'without'} the checks: {spent:.2f} s over {n} calls = "
              f"{1000 * spent / max(n, 1):.2f} s per 1,000 calls")
    print(f"gateway worker memory (RSS): {before} kB before, {after} kB after 1,000 claimed refs "
          f"(+{after - before} kB, {1024 * (after - before) / 1000:.0f} bytes a ref)")


if __name__ == "__main__":
    main()
