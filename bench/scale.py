#!/usr/bin/env python3
"""A team of 200 on the lab. Prints figures, each beside its goal; asserts nothing.

With 50 ms of round-trip latency between this machine and build1, build2 and laptop2 (bench/latency.py at both
ends of each link), for teams of 1, 50 and 230 clients: laptop (a real machine) and client records of a team of
developers and CI runners (87 % and 13 %, `connection: none`, three tenants: red on build1, blue on build2, green
on both; addresses in the lab's 10.77.0.0/16 beyond its machines, where nobody answers: the records are
allowlisted, never contacted), it measures:
  - the provision that brings both hosts to the team (firewall rules, gateway maps and tenants' daemons),
    and the no-op re-run of build1 against `ssh build1 true`;
  - add-client of one more (laptop2, a real machine), its re-run, remove-client, rotate-certs of one client;
  - status, list-clients, `audit --since 24h` (build1's gateway log padded, after each size's provision, to
    about 100 MB with audit lines of the past week in its rotated files, as Docker keeps them), builds;
  - the gateway: its reload time and memory, and the files its role manages; the firewall: its ufw rules per
    client (none since the clients' set) and the set's members.
`report` over 10,000 builds is bench/report_scale.py's (its own work; no faithful way to make 10,000 BuildKit
history records on the lab).

Warning: it provisions build1 and build2 with a copy of the inventory (.bench-scale.yml) and pads build1's
gateway log; at the end both hosts are provisioned with the shipped inventory again (`--prune-clients`).
Usage: .venv/bin/python bench/scale.py [--sizes 1,50,230] [--runs 3]
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fleet import add_latency  # noqa: E402
from provision import ssh_true  # noqa: E402

from lab.machines import Lab  # noqa: E402

INV = ROOT / ".bench-scale.yml"
GOALS = {"add-client": 2.5, "remove-client": 2.5, "status": 2.0, "list-clients": 2.0, "audit --since 24h": 3.0,
         "gateway memory MiB": 64}
TENANTS = ("red", "blue", "green")


def team(n: int) -> dict:
    """The shipped inventory with laptop and n - 1 client records (laptop2 is added and removed by the bench)."""
    data = yaml.safe_load((ROOT / "inventory.yml").read_text())
    data["all"]["vars"]["tenants"] = {"red": {"hosts": ["build1"]}, "blue": {"hosts": ["build2"]}, "green": {}}
    clients = data["all"]["children"]["clients"]["hosts"]
    laptop = clients["laptop"]
    clients.clear()
    clients["laptop"] = laptop
    for i in range(1, n):
        ci = i % 8 == 0
        record = {"address": f"10.77.{1 + i // 250}.{1 + i % 250}", "connection": "none"}
        if i % 4 == 1:
            record["tenant"] = TENANTS[i % 3]
        clients[f"{'ci' if ci else 'dev'}{i:03d}"] = record
    return data


def invoke(*args: str) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "invoke", *args, "-i", str(INV)], cwd=ROOT, capture_output=True,
                       text=True)
    return time.monotonic() - t0, r


def timed(*args: str) -> float:
    secs, r = invoke(*args)
    if r.returncode != 0:
        raise SystemExit(f"`invoke {' '.join(args)}` failed:\n{r.stderr[-3000:]}")
    return secs


def sh(lab: Lab, machine: str, cmd: str) -> str:
    r = lab.run(machine, cmd, capture=True)
    if r.returncode != 0:
        raise SystemExit(f"{machine}: {cmd}: {r.stderr[-1000:]}")
    return r.stdout


PAD = r"""F=$(docker inspect -f '{{.LogPath}}' buildkit-gateway)
now=$(date +%s)
for n in 4 3 2 1; do
  awk -v now="$now" -v n="$n" -v lines=100000 'BEGIN {
    srand(n);
    split("Solve Status Session ListWorkers Info", m, " ");
    for (i = 0; i < lines; i++) {
      t = now - 7 * 86400 + ((4 - n) * lines + i) * (7 * 86400 - 600) / (4 * lines);
      ts = strftime("%Y-%m-%dT%H:%M:%S", t, 1); hs = strftime("%d/%b/%Y:%H:%M:%S", t - 2, 1);
      c = int(rand() * 230); k = m[1 + int(rand() * 5)];
      printf "{\"log\":\"%s.%03d client=dev%03d addr=10.77.1.%d role=developer ", hs, i % 1000, c, c % 250
      printf "method=\\\"/moby.buildkit.v1.Control/%s\\\" result=ok status=200 ms=%d in=%d out=%d ", k,
             int(rand() * 30000), int(rand() * 9000), int(rand() * 90000)
      printf "term=-- waited=- ref=r%012d session=s%012d\\n\",\"stream\":\"stdout\",", i, i
      printf "\"time\":\"%s.%09dZ\"}\n", ts, i
    } }' > "$F.$n"
done
du -cb "$F".[1-4] | tail -1 | cut -f1
"""


def gateway(lab: Lab) -> dict[str, float]:
    """build1's gateway: the files its role manages, its memory, and a graceful reload's time."""
    files = int(sh(lab, "build1", "find /opt/buildkit-ops/gateway -type f | wc -l").strip())
    mem = sh(lab, "build1", "docker stats --no-stream --format '{{.MemUsage}}' buildkit-gateway").split("/")[0]
    mib = float(re.sub(r"[^0-9.]", "", mem)) * (1024 if "GiB" in mem else 1 / 1024 if "KiB" in mem else 1)
    # (the new worker answers on the runtime API once it has its files: its process ID there changes)
    pid = "echo 'show info' | socat stdio /run/buildkit-ops/gateway-admin.sock | sed -n 's/^Pid: //p'"
    reload = sh(lab, "build1", f"p=$({pid}); s=$(date +%s.%N); docker kill -s USR2 buildkit-gateway >/dev/null; "
                               f"while [ \"$({pid})\" = \"$p\" ]; do sleep 0.01; done; "
                               "awk -v s=$s -v e=$(date +%s.%N) 'BEGIN { print e - s }'")
    rules = int(sh(lab, "build1", "ufw show added | grep -c \"buildkit-ops client\" || true").strip() or 0)
    members = int(sh(lab, "build1", "{ ipset save bkops-clients4; ipset save bkops-clients6; } | grep -c '^add' "
                                    "|| true").strip() or 0)
    return {"gateway files": files, "gateway memory MiB": round(mib, 1), "gateway reload s": float(reload),
            "firewall ufw rules per client": rules, "firewall set members": members}


def measure(lab: Lab, n: int, runs: int) -> dict[str, float]:
    INV.write_text(yaml.safe_dump(team(n), sort_keys=False))
    out: dict[str, float] = {"provision to the team": timed("provision")}
    # (after the provision: one that recreates the gateway's container starts a new log)
    padded = sh(lab, "build1", PAD).strip()
    print(f"build1's gateway log padded with {int(padded) / 1e6:.0f} MB of audit lines of the past week", flush=True)
    out["no-op provision build1"] = statistics.median(timed("provision", "--host", "build1") for _ in range(runs))
    out["ssh build1 true"] = statistics.median(ssh_true(lab) for _ in range(runs))
    out["no-op / ssh"] = round(out["no-op provision build1"] / out["ssh build1 true"], 2)
    out["add-client"] = timed("add-client", "laptop2", "--address", lab.address("laptop2"))
    out["add-client re-run"] = timed("add-client", "laptop2", "--address", lab.address("laptop2"))
    out["remove-client"] = timed("remove-client", "laptop2")
    out["rotate-certs --client laptop"] = timed("rotate-certs", "--client", "laptop")
    out["status"] = timed("status")
    out["list-clients"] = timed("list-clients")
    out["audit --since 24h"] = timed("audit", "--since", "24h")
    t0 = time.monotonic()
    sh(lab, "build1", "docker logs --since 24h buildkit-gateway >/dev/null 2>&1")
    out["docker logs --since 24h on build1"] = round(time.monotonic() - t0, 2)   # (for comparison)
    out["builds"] = timed("builds")
    out.update(gateway(lab))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1,50,230")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    lab = Lab()
    procs = add_latency(lab, ["build1", "build2", "laptop2"])
    figures: dict[int, dict[str, float]] = {}
    try:
        for n in sizes:
            figures[n] = measure(lab, n, a.runs)
            print(f"measured {n} clients", flush=True)
    finally:
        for p in procs:
            p.terminate()
        sh(lab, "build1", "F=$(docker inspect -f '{{.LogPath}}' buildkit-gateway); rm -f \"$F\".[1-4]")
        subprocess.run([sys.executable, "-m", "invoke", "provision", "--prune-clients"], cwd=ROOT,
                       capture_output=True)
        for tenant in TENANTS:   # (their daemons and caches go: a tenant the inventory no longer names)
            subprocess.run([sys.executable, "-m", "invoke", "remove-tenant", tenant, "--confirm"], cwd=ROOT,
                           capture_output=True)
        INV.unlink(missing_ok=True)
    names = list(next(iter(figures.values())))
    print(f"\n{'at 50 ms RTT':32}" + "".join(f"{f'{n} clients':>14}" for n in sizes) + f"{'goal':>10}")
    for name in names:
        goal = GOALS.get(name)
        cells = "".join(f"{figures[n][name]:>14.2f}" if isinstance(figures[n][name], float)
                        else f"{figures[n][name]:>14}" for n in sizes)
        print(f"{name:32}{cells}{('<= ' + str(goal)) if goal else '':>10}")
    one, most = figures[sizes[0]], figures[sizes[-1]]
    print(f"\nno-op at {sizes[-1]} / ssh true: {most['no-op / ssh']} (goal <= 1.5); add-client at {sizes[-1]} / at "
          f"{sizes[0]}: {most['add-client'] / one['add-client']:.2f}; remove-client: "
          f"{most['remove-client'] / one['remove-client']:.2f}; rotate-certs of one client: "
          f"{most['rotate-certs --client laptop'] / one['rotate-certs --client laptop']:.2f} (goal: 1 +- 0.1)")


if __name__ == "__main__":
    main()
