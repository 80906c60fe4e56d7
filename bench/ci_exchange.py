#!/usr/bin/env python3
"""Benchmark of the CI exchange (docs/ci.md) on the lab. Prints figures; asserts nothing.

A copy of the inventory gets a CI trust whose issuer is the lab's OIDC provider (tests/oidc_helpers.py Provider,
served from this process); build1 is provisioned with it. Then, with 50 ms of round-trip latency between this
machine (the job's) and build1 (bench/latency.py at both ends):
  - one exchange as a job makes it (`bkops ci-login`'s code: a key and CSR made here, one HTTPS request), the
    first (the issuer fetches the provider's keys) and the median and 95th percentile of 100 in a row, each with
    a token of its own; and their total
  - the issuer's memory (systemd's MemoryCurrent) before and after the 100
  - the TCP round trip measured, for scale
The copy is deleted and build1 provisioned again from the session inventory at the end.
Usage: .venv/bin/python bench/ci_exchange.py [--runs N]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from oidc_helpers import Provider, github_claims  # noqa: E402

from bench.provision import DELAY_MS, add_latency, ping_rtt  # noqa: E402
from buildkit_ops.flows import ci_login  # noqa: E402
from lab.machines import Lab  # noqa: E402

INV = ROOT / ".bench-ci-inventory.yml"
AUD = "buildkit-ops"


def invoke(*args: str) -> None:
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args)} failed:\n{r.stderr[-3000:]}")


def issuer_memory(lab: Lab) -> int:
    r = lab.run("build1", "systemctl show -p MemoryCurrent --value buildkit-ops-ci-issuer", capture=True)
    return int(r.stdout.strip() or 0)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=100)
    runs = p.parse_args().runs
    lab = Lab()
    lab.up(log=lambda m: print(m, file=sys.stderr))
    provider = Provider(f"{lab.subnet}.1")
    folder = Path(tempfile.mkdtemp(prefix="bkops-bench-ci-"))
    (folder / "provider-ca.pem").write_bytes(provider.ca_pem)
    data = yaml.safe_load(lab.translate((ROOT / "inventory.yml").read_text()))
    data["all"]["vars"]["ci_trust"] = {"github": {
        "issuer": provider.issuer("github"), "audience": AUD, "ca_file": str(folder / "provider-ca.pem"),
        "networks": [f"{lab.subnet}.1"], "rules": [{"claims": {"repository": "org/app"}}]}}
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        invoke("provision", "--host", "build1", "-i", str(INV))
        ca_pem = (ROOT / ".pki" / "ca.crt").read_bytes()
        before = issuer_memory(lab)
        delay = add_latency(lab, "build1")
        try:
            rtt = ping_rtt(lab)
            times = []
            t_all = time.monotonic()
            for _ in range(runs):
                token = provider.token("github", github_claims(provider.issuer("github"), AUD))
                t0 = time.monotonic()
                ci_login.login(token, ca_pem, [lab.address("build1")], 1235, folder / "job")
                times.append(time.monotonic() - t0)
            total = time.monotonic() - t_all
        finally:
            for proc in delay:
                proc.terminate()
                proc.wait()
        after = issuer_memory(lab)
    finally:
        provider.close()
        INV.unlink(missing_ok=True)
        invoke("provision", "--host", "build1")
    rest = sorted(times[1:])
    print(f"latency added                : {2 * DELAY_MS} ms round trip (TCP connect measured {rtt * 1000:.0f} ms)")
    print(f"first exchange               : {times[0]:.3f} s  (the issuer fetched the provider's discovery and keys)")
    print(f"exchange, median of {len(rest):<3}      : {statistics.median(rest):.3f} s  (goal 0.5 s; "
          f"{statistics.median(rest) / (rtt or 1):.1f} round trips)")
    print(f"exchange, 95th percentile    : {rest[int(len(rest) * 0.95) - 1]:.3f} s")
    print(f"{runs} exchanges in a row       : {total:.1f} s")
    print(f"issuer memory                : {before / 2**20:.1f} MiB before, {after / 2**20:.1f} MiB after")


if __name__ == "__main__":
    main()
