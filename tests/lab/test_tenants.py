"""Tenants on the lab (the acceptance checks of docs/tenants.md): two teams on build1, laptop in `red` and laptop2
in `blue`, each with its own buildkitd, cache volume and history behind the one gateway. The same Dockerfile is a
cache miss for the other team; a cache mount's contents stay in the team that wrote them; blue's admin prunes all
it may and red's cache is untouched; every operation says and acts per tenant; a client moves between tenants with
one command; a tenant is removed only with --confirm, drained, its daemon and volume gone."""
from __future__ import annotations

import json
import re
import subprocess
import time

import pytest
import yaml
from helpers import (
    INV,
    LAB,
    cache_total,
    invoke,
    invoke_json,
    login,
    restore_inventory,
    wait_for,
    wait_until_proxy_sends_home,
)

from buildkit_ops import inventory

pytestmark = pytest.mark.lab

NONCE = str(time.time_ns())
# the same project for both teams: a nonce makes it new to the lab, whatever an earlier run left
PROJECT = """FROM {reg}/lab/busybox:latest
RUN echo "{nonce}" > /team.txt && sleep 1
RUN sha256sum /team.txt > /team.sha
COPY app.txt /app.txt
"""
# a cache mount: the writer leaves a marker in it; the reader tells whether it sees one (never cached: an ARG)
WRITER = """FROM {reg}/lab/busybox:latest
RUN --mount=type=cache,target=/c,id=team-cache echo "{nonce}" > /c/marker
"""
READER = """FROM {reg}/lab/busybox:latest
ARG SEEN_AT
RUN --mount=type=cache,target=/c,id=team-cache echo "at $SEEN_AT: $(cat /c/marker 2>/dev/null || echo NO-MARKER)"
"""

# red's step listens, and proves it answers on its own address (from inside its own network namespace: the fence
# lets nothing else in, not even the host); blue's step then tries that address, and the registry (its network
# works)
LISTENER = """FROM {reg}/lab/busybox:latest
ARG NONCE
RUN echo "$NONCE"; (busybox nc -ll -p 8080 -e echo red-step &); sleep 1; \\
    me=$(busybox ip -4 -o addr show eth0 | busybox awk '{{print $4}}' | busybox cut -d/ -f1); \\
    busybox nc -w 2 "$me" 8080 </dev/null | busybox grep -q red-step && echo "LISTENING AT $me"; sleep 15
"""
PROBER = """FROM {reg}/lab/busybox:latest
ARG TARGET
RUN echo "REGISTRY $(busybox nc -w 3 {registry} </dev/null >/dev/null 2>&1 && echo reached)"; \\
    echo "RED STEP $(busybox nc -w 3 $TARGET 8080 </dev/null 2>/dev/null | busybox grep red-step || echo unreached)"
"""


def daemon_ctl(tenant: str) -> str:
    return f"docker exec buildkitd-{tenant} buildctl --addr unix:///run/buildkit/buildkitd.sock"


def tenant_cache(lab, tenant: str) -> int:
    r = lab.run("build1", f"{daemon_ctl(tenant)} du --format '{{{{json .}}}}'", capture=True)
    assert r.returncode == 0, r.stderr
    return sum(x["size"] for x in json.loads(r.stdout or "[]") or [])


def write(lab, machine: str, folder: str, dockerfile: str, reg) -> None:
    r = lab.run(machine, f"mkdir -p {folder} && echo 'hello from the team' > {folder}/app.txt && "
                         f"cat > {folder}/Dockerfile", capture=True,
                input=dockerfile.format(reg=reg["address"], nonce=NONCE))
    assert r.returncode == 0, r.stderr


def build(lab, machine: str, folder: str, *extra: str) -> str:
    r = lab.run(machine, f"docker buildx build --builder buildkit-ops --progress plain {' '.join(extra)} {folder}",
                capture=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stderr


def steps(log: str) -> dict[str, bool]:
    """Each RUN/COPY step of a plain-progress log -> whether it was CACHED."""
    names = dict(re.findall(r"^#(\d+) \[\d+/\d+\] ((?:RUN|COPY) .*)$", log, re.M))
    cached = set(re.findall(r"^#(\d+) CACHED$", log, re.M))
    return {name: n in cached for n, name in names.items()}


@pytest.fixture(scope="module")
def teams(lab):
    """red and blue on build1; laptop moved into red with one command, laptop2 added into blue as its admin."""
    saved = INV.read_text()
    data = yaml.safe_load(saved)
    data["all"]["vars"]["tenants"] = {"red": {"hosts": ["build1"], "buildkit": {
                                          "prune_schedule": {"calendar": "Sun 03:00", "keep_storage": "5GB"}}},
                                      "blue": {"hosts": ["build1"], "buildkit": {"max_parallelism": 2}}}
    data["all"]["children"]["clients"]["hosts"]["laptop2"] = {"address": LAB.address("laptop2"), "tenant": "blue",
                                                              "role": "admin"}
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    r = invoke("provision")                                   # the tenants' daemons (add-client changes access only)
    assert r.returncode == 0, r.stderr
    r = invoke("add-client", "laptop", "--tenant", "red")     # the move: firewall, gateway routes, the builder
    assert r.returncode == 0, r.stderr
    assert "tenant: red" in r.stderr and "pending" not in r.stderr, r.stderr
    r = invoke("add-client", "laptop2")
    assert r.returncode == 0, r.stderr
    reg = lab.status()["registry"]
    for machine in ("laptop", "laptop2"):
        login(lab, machine, reg)
        write(lab, machine, "/root/team", PROJECT, reg)
        write(lab, machine, "/root/writer", WRITER, reg)
        write(lab, machine, "/root/reader", READER, reg)
    wait_until_proxy_sends_home(lab)
    yield lab, reg
    # laptop back to the fleet's buildkitd (one command), laptop2 removed, both tenants removed for real
    invoke("add-client", "laptop", "--tenant", "default")
    invoke("remove-client", "laptop2")
    for t in ("red", "blue"):
        invoke("remove-tenant", t, "--confirm")
    restore_inventory(saved)
    assert invoke("provision", "--prune-clients").returncode == 0


def test_each_tenant_has_its_own_daemon_volume_and_socket_behind_the_one_gateway(teams):
    lab, _ = teams
    ps = lab.run("build1", "docker ps --format '{{.Names}}'", capture=True).stdout.split()
    assert {"buildkitd", "buildkitd-red", "buildkitd-blue", "buildkit-gateway"} <= set(ps), ps
    volumes = lab.run("build1", "docker volume ls -q", capture=True).stdout.split()
    assert {"buildkit-cache", "buildkit-cache-red", "buildkit-cache-blue"} <= set(volumes)
    assert lab.run("build1", "test -S /run/buildkit-ops/tenants/red/buildkitd.sock && "
                             "test -S /run/buildkit-ops/tenants/blue/buildkitd.sock").returncode == 0
    # blue's own settings, the host's elsewhere
    workers = lab.run("build1", f"{daemon_ctl('blue')} debug workers -v", capture=True).stdout
    assert re.search(r"Parallelism:\s+2\b", workers) or "max-parallelism = 2" in lab.run(
        "build1", "cat /opt/buildkit-ops/tenants/blue/buildkitd.toml", capture=True).stdout
    # red's own prune timer, on red's own daemon
    assert lab.run("build1", "systemctl is-active buildkit-ops-prune-red.timer", capture=True).stdout.strip() == "active"
    unit = lab.run("build1", "cat /etc/systemd/system/buildkit-ops-prune-red.service", capture=True).stdout
    assert "exec buildkitd-red buildctl" in unit and "--keep-storage 5000" in unit, unit
    r = invoke("provision", "--host", "build1")      # converged: nothing changes, nothing restarts
    assert r.returncode == 0 and "no changes" in r.stderr, r.stderr
    # a rule of red's fence taken away (a firewall reload): provision puts it back, without a restart
    started = lab.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd-red", capture=True).stdout
    bridge = f"buildkit-t{inventory.load(INV).tenants['red'].slot}"
    rule = next(line.split(" ", 1)[1] for line in lab.run(
        "build1", "iptables -t raw -S PREROUTING", capture=True).stdout.splitlines() if f" ! -i {bridge} " in line)
    assert lab.run("build1", f"iptables -t raw -D {rule}").returncode == 0
    r = invoke("provision", "--host", "build1")
    assert r.returncode == 0 and "buildkitd[red]: build-step fence" in r.stderr and "put back" in r.stderr, r.stderr
    assert rule in lab.run("build1", "iptables -t raw -S PREROUTING", capture=True).stdout
    assert lab.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd-red", capture=True).stdout == started


def test_the_same_dockerfile_is_no_cache_hit_for_another_tenant_and_all_cached_again(teams):
    lab, _ = teams
    first = steps(build(lab, "laptop", "/root/team"))
    assert first and not any(first.values()), first                        # new to red
    other = steps(build(lab, "laptop2", "/root/team"))
    assert set(other) == set(first) and not any(other.values()), other     # red's cache is not blue's
    again = steps(build(lab, "laptop2", "/root/team"))
    assert again and all(again.values()), again                            # blue's own cache, all of it


def test_a_cache_mount_of_one_tenant_is_not_visible_to_another(teams):
    lab, _ = teams
    build(lab, "laptop", "/root/writer")
    seen = build(lab, "laptop", "/root/reader", "--build-arg", f"SEEN_AT={time.time_ns()}")
    assert f": {NONCE}" in seen, seen[-2000:]                                # (red sees its own marker)
    unseen = build(lab, "laptop2", "/root/reader", "--build-arg", f"SEEN_AT={time.time_ns()}")
    assert "NO-MARKER" in unseen and NONCE not in unseen, unseen[-2000:]


def test_a_step_of_one_tenant_cannot_reach_a_step_of_another(teams):
    lab, reg = teams
    write(lab, "laptop", "/root/listener", LISTENER, reg)
    write(lab, "laptop2", "/root/prober", PROBER.replace("{registry}", reg["address"].replace(":", " ")), reg)
    subprocess.run(["docker", "exec", "-d", lab.container("laptop"), "sh", "-c",
                    f"docker buildx build --builder buildkit-ops --progress plain --build-arg NONCE={time.time_ns()} "
                    f"/root/listener > /root/listener.log 2>&1; echo rc=$? >> /root/listener.log"], check=True)
    at = wait_for(lambda: re.findall(r"LISTENING AT (10\.11\.\d+\.\d+)",
                                     lab.run("laptop", "cat /root/listener.log", capture=True).stdout),
                  timeout=40, what="red's step listening and answering itself")[0]
    probed = build(lab, "laptop2", "/root/prober", "--build-arg", f"TARGET={at}")
    assert "REGISTRY reached" in probed, probed[-2000:]                   # blue's step has a network
    assert "RED STEP unreached" in probed and "RED STEP red-step" not in probed, probed[-2000:]
    wait_for(lambda: "rc=0" in lab.run("laptop", "cat /root/listener.log", capture=True).stdout, timeout=60,
             what="red's listening build to end")


def test_blues_admin_prunes_all_it_may_and_reds_cache_is_intact(teams):
    lab, _ = teams
    red_before, fleet_before = tenant_cache(lab, "red"), cache_total(lab)
    assert red_before > 0 and tenant_cache(lab, "blue") > 0
    r = lab.run("laptop2", "docker buildx prune -af --builder buildkit-ops", capture=True)
    assert r.returncode == 0, r.stderr                                      # (admin of blue: allowed)
    assert tenant_cache(lab, "blue") == 0
    assert tenant_cache(lab, "red") == red_before and cache_total(lab) == fleet_before
    wait_until_proxy_sends_home(lab)
    rebuilt = steps(build(lab, "laptop", "/root/team"))
    assert rebuilt and all(rebuilt.values()), rebuilt                        # red's cache: every step CACHED


def test_operations_say_and_act_per_tenant(teams):
    lab, _ = teams
    build(lab, "laptop", "/root/team")              # (one build of red's at least, whatever ran before)
    rc, st, err = invoke_json("status", "--host", "build1")
    tenants = st["hosts"]["build1"]["tenants"]
    assert {n: t["state"] for n, t in tenants.items()} == {"blue": "running", "red": "running"}, err
    assert tenants["red"]["cache"]["total"] > 0 and tenants["red"]["builds"]["24h"]["builds"] >= 1
    rc, doc, err = invoke_json("builds", "--host", "build1", "--since", "1h", "--tenant", "red")
    assert rc == 0 and doc["build1"]["builds"], err
    assert {b["tenant"] for b in doc["build1"]["builds"]} == {"red"}
    assert {b["client"] for b in doc["build1"]["builds"]} <= {"laptop", None}
    rc, doc, err = invoke_json("audit", "--host", "build1", "--since", "1h", "--tenant", "blue")
    assert rc == 0 and {c["client"] for c in doc["build1"]["calls"]} == {"laptop2"}, doc
    rows = {r["name"]: r["tenant"] for r in json.loads(invoke("list-clients", "--json").stdout)
            if not r["status"].startswith("revoked")}
    assert rows["laptop"] == "red" and rows["laptop2"] == "blue"
    assert "TENANT" in invoke("list-clients").stdout.splitlines()[0]
    r = invoke("cache-prune", "--tenant", "red", "--check")     # red's hosts only: build1
    assert r.returncode == 0 and "build1" in r.stderr and "build2" not in r.stderr, r.stderr
    r = invoke("cache-prune", "--tenant", "green", "--check")
    assert r.returncode == 2 and "no tenant named 'green'" in r.stderr and "Traceback" not in r.stderr


def test_a_tenant_is_removed_only_when_confirmed_and_not_while_it_has_clients(teams):
    lab, _ = teams
    r = invoke("remove-tenant", "red")
    assert r.returncode == 2 and "tenant red still has clients: laptop" in r.stderr, r.stderr
    # an empty tenant: shown, not removed, without --confirm
    data = yaml.safe_load(INV.read_text())
    data["all"]["vars"]["tenants"]["green"] = {"hosts": ["build1"]}
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    assert invoke("provision", "--host", "build1").returncode == 0
    assert tenant_cache(lab, "green") == 0
    r = invoke("remove-tenant", "green")
    assert r.returncode == 0 and "nothing was removed" in r.stderr, r.stderr
    assert "buildkitd-green" in lab.run("build1", "docker ps --format '{{.Names}}'", capture=True).stdout
    r = invoke("remove-tenant", "green", "--confirm")
    assert r.returncode == 0, r.stderr
    # nothing of it is left on the host: container, volume, files, socket
    assert "buildkitd-green" not in lab.run("build1", "docker ps -a --format '{{.Names}}'", capture=True).stdout
    assert "buildkit-cache-green" not in lab.run("build1", "docker volume ls -q", capture=True).stdout
    left = lab.run("build1", "ls /opt/buildkit-ops/tenants /run/buildkit-ops/tenants /etc/systemd/system",
                   capture=True).stdout
    assert "green" not in left and "red" in left, left          # (red's are there: the listing is real)
    assert "green" not in (yaml.safe_load(INV.read_text())["all"]["vars"]["tenants"])
    r = invoke("provision", "--host", "build1")
    assert r.returncode == 0 and "no changes" in r.stderr, r.stderr
