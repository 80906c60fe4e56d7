"""Builds go where there is room, on the lab: laptop (failover proxy, `placement: spill`, home build1) builds at
home while build1 has room (the control); with build1 full (laptop2 runs max_parallelism builds there), laptop's
next build goes to build2, and `builds` says it ran away from build1; once build1 has room again, laptop's next
build goes home. Each gateway answers "room?" only to a client certificate."""
from __future__ import annotations

import subprocess
import time

import pytest
import yaml
from helpers import INV, PKI, invoke, invoke_json, login, put_client_files, restore_inventory, wait_for

pytestmark = pytest.mark.lab

STEP = """FROM {reg}/lab/busybox:latest
ARG N
RUN echo "$N" > /n && sleep {seconds}
"""
BUILDX = "docker buildx build --builder buildkit-ops --progress plain"


@pytest.fixture(scope="module")
def spill(lab):
    """laptop pinned to build1 with its failover proxy and `placement: spill`; laptop2 a client with its
    own certificate files, to fill build1 with buildctl."""
    saved = INV.read_text()
    data = yaml.safe_load(saved)
    data["all"]["children"]["clients"]["hosts"]["laptop"].update(home="build1", placement="spill")
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    assert invoke("provision").returncode == 0
    r = invoke("update-clients")
    assert r.returncode == 0, r.stderr[-2000:]
    r = invoke("add-client", "laptop2", "--address", lab.address("laptop2"))
    assert r.returncode == 0, r.stderr[-2000:]
    put_client_files(lab, "laptop2", {"ca.crt": (PKI / "ca.crt").read_bytes(),
                                      "client.crt": (PKI / "clients/laptop2/client.crt").read_bytes(),
                                      "client.key": (PKI / "clients/laptop2/client.key").read_bytes()},
                     where="/root/own-cert")
    reg = lab.status()["registry"]
    for machine, seconds in (("laptop", 1), ("laptop2", 45)):
        login(lab, machine, reg)
        lab.run(machine, "mkdir -p /root/spill && cat > /root/spill/Dockerfile", capture=True,
                input=STEP.format(reg=reg["address"], seconds=seconds))
    yield lab
    restore_inventory(saved)
    assert invoke("provision", "--prune-clients").returncode == 0
    assert invoke("update-clients").returncode == 0


def proxy_says(lab, state: str) -> bool:
    """laptop's failover proxy's last word on build1: `UP` or `DOWN` (a full host is down for new builds)."""
    last = lab.run("laptop", "docker logs buildkit-ops-proxy-buildkit-ops 2>&1 | grep 'Server build1/build1 is' "
                             "| tail -1", capture=True).stdout
    return f" is {state}" in last


def laptops_build(lab, since: float) -> dict:
    """laptop's newest build since `since`, as `builds` lists it (its host with it)."""
    r = lab.run("laptop", f"{BUILDX} --build-arg N={time.time_ns()} /root/spill", capture=True)
    assert r.returncode == 0, r.stderr[-2000:]
    rc, doc, err = invoke_json("builds", "--since", "10m")
    assert rc == 0, err
    mine = [{**b, "host": h} for h, d in doc.items() for b in d.get("builds", [])
            if b["client"] == "laptop" and b["started"] >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since))]
    return max(mine, key=lambda b: b["started"])


def fill(lab, host: str, n: int) -> list[subprocess.Popen]:
    """n long builds of laptop2 straight to `host` (buildctl, laptop2's own certificate)."""
    cmd = (f"buildctl --addr tcp://{lab.address(host)}:1234 --tlscacert /root/own-cert/ca.crt "
           f"--tlscert /root/own-cert/client.crt --tlskey /root/own-cert/client.key build --frontend dockerfile.v0 "
           f"--local context=/root/spill --local dockerfile=/root/spill")
    return [subprocess.Popen(["docker", "exec", lab.container("laptop2"), "sh", "-c",
                              f"{cmd} --opt build-arg:N=fill{i}-{time.time_ns()}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for i in range(n)]


def room(lab, host: str, cert: bool = True) -> str:
    tls = "--cert /root/own-cert/client.crt --key /root/own-cert/client.key " if cert else ""
    return lab.run("laptop2", f"curl -sS --http1.1 --cacert /root/own-cert/ca.crt {tls}--resolve "
                              f"fleet.buildkit-ops.invalid:1234:{lab.address(host)} "
                              f"https://fleet.buildkit-ops.invalid:1234/bkops/room", capture=True).stdout


def test_a_new_build_spills_to_a_host_with_room_while_home_is_full_and_comes_home_after(spill):
    lab = spill
    # the control: build1 has room, laptop's build stays home
    wait_for(lambda: proxy_says(lab, "UP") or "Server build1/build1" not in lab.run(
        "laptop", "docker logs buildkit-ops-proxy-buildkit-ops 2>&1", capture=True).stdout, timeout=30,
        what="laptop's proxy to take build1 for up")
    home = laptops_build(lab, time.time() - 1)
    assert home["host"] == "build1" and home["away_from"] is None, home
    assert room(lab, "build1") == "room" and room(lab, "build1", cert=False) == ""   # (no certificate, no answer)
    # build1 full: max_parallelism (4 in the lab) builds of laptop2 run there
    fills = fill(lab, "build1", 4)
    try:
        wait_for(lambda: room(lab, "build1") == "full", timeout=90, what="build1 to say it is full")
        wait_for(lambda: proxy_says(lab, "DOWN"), timeout=30, what="laptop's proxy to send new builds elsewhere")
        away = laptops_build(lab, time.time() - 1)
        assert away["host"] == "build2" and away["away_from"] == "build1", away
        shown = invoke("builds", "--since", "10m").stdout
        assert "laptop (away from build1)" in shown, shown[-2000:]
    finally:
        for p in fills:
            p.wait(timeout=180)
    assert all(p.returncode == 0 for p in fills), [p.stderr.read()[-800:] for p in fills]
    # build1 has room again: laptop's next build goes home
    wait_for(lambda: room(lab, "build1") == "room" and proxy_says(lab, "UP"), timeout=60,
             what="laptop's proxy to send builds to build1 again")
    back = laptops_build(lab, time.time() - 1)
    assert back["host"] == "build1" and back["away_from"] is None, back
