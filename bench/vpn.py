#!/usr/bin/env python3
"""VPN benchmark on the lab. Prints figures; asserts nothing.

laptop2, a client of build1 and build2 without a failover proxy, builds through build1's gateway with and without
the WireGuard tunnel, alternating in one run (the lab's machines share a kernel without WireGuard's module: the
tunnel is wireguard-go in user space on both ends, the slow path; a host with the module pays much less):
- a cached rebuild (the project built once before), median of N;
- a build whose only work is uploading a fresh 100 MB context, median of N (MB/s);
- `add-client laptop2` with 50 ms of round trip between this machine and build1, build2 and laptop2
  (bench/latency.py, as bench/provision.py does), with the tunnel and without.
Ratios are of the two modes measured in the same run. It works on a copy of the lab's inventory
(.bench-vpn-*.yml) and puts the hosts back without a VPN at the end.
Usage: .venv/bin/python bench/vpn.py [--runs 3]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from provision import add_latency  # noqa: E402

from lab.machines import Lab  # noqa: E402

PLAIN, TUNNEL = ROOT / ".bench-vpn-plain.yml", ROOT / ".bench-vpn-tunnel.yml"
DOCKERFILE = "FROM scratch\nCOPY . /ctx\n"


def invoke(inventory: Path, *args: str) -> float:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "invoke", *args, "-i", str(inventory)], cwd=ROOT, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args)} failed:\n{r.stderr[-3000:]}")
    return time.monotonic() - t0


def build(lab: Lab, where: str) -> float:
    t0 = time.monotonic()
    r = lab.run("laptop2", f"docker buildx build --builder buildkit-ops --progress plain {where}", capture=True)
    if r.returncode != 0:
        raise SystemExit(f"build of {where} failed:\n{r.stderr[-2000:]}")
    return time.monotonic() - t0


def setup(lab: Lab, inventory: Path) -> None:
    invoke(inventory, "provision")
    invoke(inventory, "add-client", "laptop2", "--address", "10.77.0.22")
    lab.run("laptop2", f"mkdir -p /root/cached /root/big && printf '{DOCKERFILE}' > /root/cached/Dockerfile && "
                       f"echo small > /root/cached/a.txt && printf '{DOCKERFILE}' > /root/big/Dockerfile", capture=True)
    build(lab, "/root/cached")


def measure(lab: Lab, inventory: Path, runs: int) -> dict[str, float]:
    setup(lab, inventory)
    cached = [build(lab, "/root/cached") for _ in range(runs)]
    upload = []
    for _ in range(runs):
        lab.run("laptop2", "head -c 100000000 /dev/urandom > /root/big/blob", capture=True)
        upload.append(build(lab, "/root/big"))
    invoke(inventory, "remove-client", "laptop2")
    delay = [p for m in ("build1", "build2", "laptop2") for p in add_latency(lab, m)]
    try:
        added = invoke(inventory, "add-client", "laptop2", "--address", "10.77.0.22")
    finally:
        for p in delay:
            p.terminate()
        for p in delay:
            p.wait()
    invoke(inventory, "remove-client", "laptop2")
    return {"cached": statistics.median(cached), "upload": statistics.median(upload), "add_client": added}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    lab = Lab()
    data = yaml.safe_load((ROOT / "inventory.yml").read_text())
    PLAIN.write_text(yaml.safe_dump(data, sort_keys=False))
    data["all"]["vars"]["vpn"] = {"kind": "wireguard"}
    TUNNEL.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        plain = measure(lab, PLAIN, args.runs)
        tunnel = measure(lab, TUNNEL, args.runs)
    finally:
        invoke(PLAIN, "provision", "--prune-clients")
        lab.run("laptop2", "systemctl disable -q --now wg-quick@bkops-vpn 2>/dev/null; "
                           "rm -f /etc/wireguard/bkops-vpn.*", capture=True)
        PLAIN.unlink(missing_ok=True)
        TUNNEL.unlink(missing_ok=True)
    print(f"runs per figure              : {args.runs} (medians)")
    print(f"cached rebuild               : {plain['cached']:.2f} s plain, {tunnel['cached']:.2f} s through the tunnel "
          f"({tunnel['cached'] / plain['cached']:.2f}x)")
    print(f"100 MB context upload        : {plain['upload']:.2f} s plain ({100 / plain['upload']:.0f} MB/s), "
          f"{tunnel['upload']:.2f} s through the tunnel ({100 / tunnel['upload']:.0f} MB/s) "
          f"({tunnel['upload'] / plain['upload']:.2f}x)")
    print(f"add-client at 50 ms RTT      : {plain['add_client']:.1f} s plain, {tunnel['add_client']:.1f} s with the "
          f"tunnel ({tunnel['add_client'] / plain['add_client']:.2f}x)")


if __name__ == "__main__":
    main()
