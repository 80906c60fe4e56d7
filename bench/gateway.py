#!/usr/bin/env python3
"""Gateway benchmark on the lab. Prints figures; asserts nothing.

On build1 (provisioned), from buildctl inside buildkitd's container (so that the client's machine and network
are the same for every path): the same builds through the gateway (TCP + mutual TLS + HAProxy, with the
operator's certificate) and straight to a buildkitd, alternating, median of N runs each:
- a cached rebuild (a two-step Dockerfile built once before);
- a build whose only work is uploading a fresh 100 MB context (throughput in MB/s);
and the gateway container's memory. Ratios are of paths measured in the same run.

Two straight paths: mutual TLS straight to buildkitd (what clients had before the gateway: a second, throwaway
buildkitd of the same image with the host's server certificate, listening on 127.0.0.1:1235, its cache in a
volume as buildkitd's is), and buildkitd's
unix socket with no TLS at all (the gateway's cost next to it is an upper bound).
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
STRAIGHT_TLS = ("tcp://127.0.0.1:1235 --tlsservername build1 --tlscacert /tmp/bench/ca.crt "
                "--tlscert /tmp/bench/client.crt --tlskey /tmp/bench/client.key")
DOCKERFILE = "FROM scratch\nCOPY a.txt /a.txt\nCOPY b.txt /b.txt\n"
PATHS = (("unix", UNIX), ("tls", STRAIGHT_TLS), ("gateway", GATEWAY))


def start_straight_tls(lab: Lab) -> None:
    """A throwaway buildkitd of the same image as build1's, with its TLS listener as before the gateway (the
    host's server certificate and key, split from the gateway's server.pem into a root-only folder)."""
    d = "/root/bench-straight"
    image = sh(lab, "docker inspect -f '{{.Config.Image}}' buildkitd").strip()
    sh(lab, f"rm -rf {d} && mkdir -m 700 {d} && cp /opt/buildkit-ops/tls/ca.crt /opt/buildkit-ops/tls/server.crt {d}/ "
            f"&& openssl pkey -in /opt/buildkit-ops/gateway/server.pem -out {d}/server.key")
    sh(lab, f"docker rm -f bench-straight >/dev/null 2>&1; docker run -d --name bench-straight --network host "
            f"--cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined --security-opt "
            f"apparmor=unconfined -v {d}:/tls:ro -v bench-straight:/var/lib/buildkit --entrypoint buildkitd {image} "
            f"--addr tcp://127.0.0.1:1235 --tlscert /tls/server.crt --tlskey /tls/server.key "
            f"--tlscacert /tls/ca.crt >/dev/null")
    for _ in range(60):
        if lab.run("build1", f"docker exec buildkitd buildctl --addr {STRAIGHT_TLS} debug workers",
                   capture=True).returncode == 0:
            return
        time.sleep(0.5)
    raise SystemExit("the straight TLS buildkitd did not answer: " + sh(lab, "docker logs --tail 20 bench-straight"))


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
    start_straight_tls(lab)
    for _path, addr in PATHS:
        build(lab, addr, "/tmp/bench/small")
    cached: dict[str, list[float]] = {path: [] for path, _ in PATHS}
    upload: dict[str, list[float]] = {path: [] for path, _ in PATHS}
    for _ in range(runs):
        for path, addr in PATHS:
            cached[path].append(build(lab, addr, "/tmp/bench/small"))
            # a fresh 100 MB context each time (random: nothing to reuse), then build it
            sh(lab, "docker exec buildkitd sh -c 'head -c 104857600 /dev/urandom > /tmp/bench/big/a.txt && "
                    "date +%s%N > /tmp/bench/big/b.txt'")
            upload[path].append(build(lab, addr, "/tmp/bench/big"))
    c = {k: statistics.median(v) for k, v in cached.items()}
    u = {k: statistics.median(v) for k, v in upload.items()}
    mem = sh(lab, "docker stats --no-stream --format '{{.MemUsage}}' buildkit-gateway").strip()
    print(f"cached rebuild, median of {runs}: straight TLS {c['tls'] * 1000:.0f} ms, unix socket "
          f"{c['unix'] * 1000:.0f} ms, through the gateway {c['gateway'] * 1000:.0f} ms: "
          f"{c['gateway'] / c['tls']:.2f}x straight TLS, {c['gateway'] / c['unix']:.2f}x the unix socket")
    print(f"100 MB context, median of {runs}: straight TLS {100 / u['tls']:.1f} MB/s, unix socket "
          f"{100 / u['unix']:.1f} MB/s, through the gateway {100 / u['gateway']:.1f} MB/s: throughput "
          f"{u['tls'] / u['gateway']:.2f}x straight TLS, {u['unix'] / u['gateway']:.2f}x the unix socket")
    print(f"gateway memory: {mem}")
    sh(lab, "docker exec buildkitd rm -rf /tmp/bench; docker rm -f bench-straight >/dev/null; "
            "docker volume rm bench-straight >/dev/null; rm -rf /root/bench-straight")


if __name__ == "__main__":
    main()
