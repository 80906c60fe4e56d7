#!/usr/bin/env python3
"""What one more tenant costs on a build host, on the lab. Prints figures; asserts nothing.

On build1 (provisioned by the session inventory): a tenant `bench` is added to a copy of the inventory and
provisioned (its own buildkitd, cache volume, files, step bridge and fence), then, in the same run:
- memory: the idle tenant daemon's against the fleet's own buildkitd (docker stats, after the same settling time);
- disk: the fresh tenant's cache volume, files and container layer, against the fleet daemon's cache as it is;
- time: the provision that added the tenant, and a no-op provision after it (restarts nothing else);
- a small build with a fresh context on the new tenant's daemon against the same on the fleet's daemon;
then `remove-tenant bench --confirm` and the copy deleted.
Usage: .venv/bin/python bench/tenants.py
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lab.machines import Lab  # noqa: E402

INV = ROOT / ".bench-tenants-inventory.yml"
UNIX = "unix:///run/buildkit/buildkitd.sock"
DOCKERFILE = "FROM scratch\nCOPY a.txt /a.txt\n"


def sh(lab: Lab, cmd: str) -> str:
    r = lab.run("build1", cmd, capture=True)
    if r.returncode != 0:
        raise SystemExit(f"{cmd}: {r.stderr.strip()[-500:]}")
    return r.stdout


def invoke(*args: str) -> float:
    t0 = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "invoke", *args, "-i", str(INV)], cwd=ROOT, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"invoke {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return time.monotonic() - t0


def mib(text: str) -> float:
    value = text.split("/")[0].strip()
    for unit, factor in (("GiB", 1024), ("MiB", 1), ("KiB", 1 / 1024), ("B", 1 / 1024 / 1024)):
        if value.endswith(unit):
            return float(value[: -len(unit)]) * factor
    raise ValueError(text)


def memory(lab: Lab, container: str) -> float:
    return mib(sh(lab, f"docker stats --no-stream --format '{{{{.MemUsage}}}}' {container}"))


def disk(lab: Lab, tenant: str | None) -> int:
    volume = f"buildkit-cache-{tenant}" if tenant else "buildkit-cache"
    files = f"/opt/buildkit-ops/tenants/{tenant}" if tenant else "/opt/buildkit-ops/buildkitd.toml"
    out = sh(lab, f"du -sb /var/lib/docker/volumes/{volume} {files} | awk '{{s+=$1}} END {{print s}}'")
    layer = sh(lab, f"docker ps -s --filter name=^buildkitd{'-' + tenant if tenant else ''}$ --format '{{{{.Size}}}}'")
    print(f"  {tenant or 'fleet'}: container layer {layer.strip()}", file=sys.stderr)
    return int(out.strip())


def first_build(lab: Lab, container: str) -> float:
    sh(lab, f"docker exec {container} sh -c 'rm -rf /tmp/bp && mkdir -p /tmp/bp && echo {time.time_ns()} > "
            f"/tmp/bp/a.txt && printf \"{DOCKERFILE}\" > /tmp/bp/Dockerfile'")
    t0 = time.monotonic()
    sh(lab, f"docker exec {container} buildctl --addr {UNIX} build --frontend dockerfile.v0 --local context=/tmp/bp "
            f"--local dockerfile=/tmp/bp")
    return time.monotonic() - t0


def main() -> None:
    lab = Lab()
    data = yaml.safe_load((ROOT / "inventory.yml").read_text())
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    invoke("provision", "--host", "build1")
    data["all"]["vars"]["tenants"] = {"bench": {"hosts": ["build1"]}}
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        added = invoke("provision", "--host", "build1")
        noop = invoke("provision", "--host", "build1")
        time.sleep(10)   # both daemons idle, settled
        fleet_mem, tenant_mem = memory(lab, "buildkitd"), memory(lab, "buildkitd-bench")
        fleet_disk, tenant_disk = disk(lab, None), disk(lab, "bench")
        on_tenant = first_build(lab, "buildkitd-bench")
        on_fleet = first_build(lab, "buildkitd")
        time.sleep(5)
        tenant_used = memory(lab, "buildkitd-bench")
        print(f"provision adding a tenant: {added:.2f} s; no-op provision after it: {noop:.2f} s")
        print(f"memory, idle: tenant daemon {tenant_mem:.1f} MiB, fleet daemon {fleet_mem:.1f} MiB "
              f"({tenant_mem / fleet_mem:.2f}x); the tenant daemon after its first build {tenant_used:.1f} MiB")
        print(f"disk: fresh tenant {tenant_disk / 1e6:.1f} MB (cache volume and files), fleet daemon's cache "
              f"{fleet_disk / 1e6:.1f} MB as it is now")
        print(f"a small build with a fresh context: on the new tenant's daemon {on_tenant:.2f} s, on the fleet "
              f"daemon {on_fleet:.2f} s ({on_tenant / on_fleet:.2f}x)")
    finally:
        del data["all"]["vars"]["tenants"]["bench"]
        INV.write_text(yaml.safe_dump(data, sort_keys=False))
        subprocess.run([sys.executable, "-m", "invoke", "remove-tenant", "bench", "--confirm", "-i", str(INV)],
                       cwd=ROOT, capture_output=True, text=True)
        INV.unlink(missing_ok=True)
        print(json.dumps({"removed": "bench"}), file=sys.stderr)


if __name__ == "__main__":
    main()
