#!/usr/bin/env python3
"""Gateway benchmark on the lab. Prints figures; asserts nothing.

On build1 (provisioned), from buildctl inside buildkitd's container (so that the client's machine and network
are the same for both paths): the same builds straight to buildkitd's unix socket and through the gateway
(TCP + mutual TLS + HAProxy, with the operator's certificate), alternating, median of N runs each:
- a cached rebuild (a two-step Dockerfile built once before);
- a build whose only work is uploading a fresh 100 MB context (throughput in MB/s);
and the gateway container's memory. Ratios are of the two paths measured in the same run.

"Straight" is the unix socket, with no TLS at all: the ratio is an upper bound of the gateway's cost next to the
straight TLS listener buildkitd had before.
Usage: .venv/bin/python bench/gateway.py [--runs 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.machines import Lab  # noqa: E402

UNIX = "unix:///run/buildkit/buildkitd.sock"
GATEWAY = ("tcp://127.0.0.1:1234 --tlsservername build1 --tlscacert /tmp/bench/ca.crt "
           "--tlscert /tmp/bench/client.crt --tlskey /tmp/bench/client.key")
DOCKERFILE = "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n"


def sh(lab: Lab, cmd: str) -> str:
    r = lab.run("build1", cmd, capture=True)
    if r.returncode != 0:
        raise SystemExit(f"failed: {cmd}\n{r.stderr[-2000:]}")
    return r.stdout


def build(lab: Lab, addr: str, context: str) -> float:
    t0 = time.monotonic()
    sh(lab, f"docker exec buildkitd buildctl --addr {addr} build --frontend dockerfile.v0 "
            f"--local context={context} --local dockerfile={context} >/dev/null 2>&1")
    return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    runs = ap.parse_args().runs
    lab = Lab()
    pki = ROOT / ".pki"
    sh(lab, "docker exec buildkitd mkdir -p /tmp/bench/small /tmp/bench/big")
    for name, src in (("ca.crt", pki / "ca.crt"), ("client.crt", pki / "operator/client.crt"),
                      ("client.key", pki / "operator/client.key")):
        lab.run("build1", f"docker exec -i buildkitd sh -c 'cat > /tmp/bench/{name}'", capture=True,
                input=src.read_text())
    lab.run("build1", "docker exec -i buildkitd sh -c 'cat > /tmp/bench/small/Dockerfile'", capture=True,
            input=DOCKERFILE)
    sh(lab, "docker exec buildkitd sh -c 'echo a > /tmp/bench/small/a.txt && echo b > /tmp/bench/small/b.txt && "
            "cp /tmp/bench/small/Dockerfile /tmp/bench/big/'")
    build(lab, UNIX, "/tmp/bench/small")
    cached = {"straight": [], "gateway": []}
    upload = {"straight": [], "gateway": []}
    for _ in range(runs):
        for path, addr in (("straight", UNIX), ("gateway", GATEWAY)):
            cached[path].append(build(lab, addr, "/tmp/bench/small"))
            # a fresh 100 MB context each time (random: nothing to reuse), then build it
            sh(lab, "docker exec buildkitd sh -c 'head -c 104857600 /dev/urandom > /tmp/bench/big/a.txt && "
                    "date +%s%N > /tmp/bench/big/b.txt'")
            upload[path].append(build(lab, addr, "/tmp/bench/big"))
    c = {k: statistics.median(v) for k, v in cached.items()}
    u = {k: statistics.median(v) for k, v in upload.items()}
    mem = sh(lab, "docker stats --no-stream --format '{{.MemUsage}}' buildkit-gateway").strip()
    print(f"cached rebuild, median of {runs}: straight {c['straight'] * 1000:.0f} ms, through the gateway "
          f"{c['gateway'] * 1000:.0f} ms: {c['gateway'] / c['straight']:.2f}x")
    print(f"100 MB context, median of {runs}: straight {100 / u['straight']:.1f} MB/s, through the gateway "
          f"{100 / u['gateway']:.1f} MB/s: throughput {u['straight'] / u['gateway']:.2f}x of straight")
    print(f"gateway memory: {mem}")
    sh(lab, "docker exec buildkitd rm -rf /tmp/bench")


if __name__ == "__main__":
    main()
