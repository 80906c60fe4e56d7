"""Two build hosts that both work: laptop and laptop2 have different home hosts, each one's builds land on
its home host (its build history grows there, not on the other), both caches grow, and update-clients
changes nothing when the fleet did not change."""
from __future__ import annotations

import json
import secrets

import pytest
from helpers import INV, invoke, invoke_json, restore_inventory

pytestmark = pytest.mark.lab

SOCK = "unix:///run/buildkit/buildkitd.sock"
PROJECT = """FROM {reg}/lab/busybox:latest
RUN echo "{nonce}" > /n && sha256sum /n > /n.sum
"""


@pytest.fixture(scope="module")
def fleet(lab):
    saved = INV.read_text()
    reg = lab.status()["registry"]
    assert invoke("provision").returncode == 0
    for name, args in (("laptop", ["--home", "build1"]),
                       ("laptop2", ["--address", "10.77.0.22", "--home", "build2"])):
        # (the names alone put both on build1: pinned apart, as an operator would)
        r = invoke("add-client", name, *args)
        assert r.returncode == 0, r.stderr
        r = lab.run(name, f"docker login -u {reg['username']} --password-stdin {reg['address']}", capture=True,
                    input=reg["password"])
        assert r.returncode == 0, r.stderr
    yield lab, reg
    restore_inventory(saved)


def histories(lab, host: str) -> int:
    r = lab.run(host, f"docker exec buildkitd buildctl --addr {SOCK} debug histories --format '{{{{json .}}}}'",
                capture=True)
    return len([line for line in r.stdout.splitlines() if line.startswith("{")])


def cache_bytes(lab, host: str) -> int:
    r = lab.run(host, f"docker exec buildkitd buildctl --addr {SOCK} du --format '{{{{json .}}}}'", capture=True)
    return sum(x.get("size", x.get("Size", 0)) for x in json.loads(r.stdout or "[]"))


def test_each_client_builds_on_its_home_host_and_both_hosts_work(fleet):
    lab, reg = fleet
    homes = {row["name"]: row["home"] for row in json.loads(invoke("list-clients", "--json").stdout)
             if not row["status"].startswith("revoked")}
    assert homes == {"laptop": "build1", "laptop2": "build2"}
    before = {h: (histories(lab, h), cache_bytes(lab, h)) for h in ("build1", "build2")}
    for name in ("laptop", "laptop2"):
        lab.run(name, "mkdir -p /root/fleet && cat > /root/fleet/Dockerfile", capture=True,
                input=PROJECT.format(reg=reg["address"], nonce=secrets.token_hex(8)))
        r = lab.run(name, "docker buildx build --builder buildkit-ops --progress plain /root/fleet", capture=True)
        assert r.returncode == 0, r.stderr[-2000:]
    after = {h: (histories(lab, h), cache_bytes(lab, h)) for h in ("build1", "build2")}
    for h in ("build1", "build2"):
        assert after[h][0] == before[h][0] + 1, (h, before, after)  # one build each: its own client's
        assert after[h][1] > before[h][1], (h, before, after)      # and its cache grew
    r = invoke("status", "--json")
    doc = json.loads(r.stdout)
    assert doc["hosts"]["build1"]["home_of"] == ["laptop"] and doc["hosts"]["build2"]["home_of"] == ["laptop2"]


def test_update_clients_changes_nothing_when_the_fleet_did_not_change(fleet):
    rc, doc, err = invoke_json("update-clients", "--check")
    assert rc == 0, err
    assert {h: d["changed"] for h, d in doc["hosts"].items()} == {"laptop": 0, "laptop2": 0}
    r = invoke("update-clients")
    assert r.returncode == 0, r.stderr
    assert "laptop     : ok=" in r.stderr and "changed=0" in r.stderr and "no changes" in r.stderr


def test_a_project_built_on_one_host_starts_warm_on_another_through_the_registry_cache(fleet):
    """laptop (home build1) exports its cache to the lab registry; laptop2 (home build2) builds the same
    project with that cache: its RUN step is CACHED on a host that never built it."""
    from lab.buildx_progress import step_states
    lab, reg = fleet
    ref = f"{reg['address']}/lab/fleet-cache:buildcache"
    project = PROJECT.format(reg=reg["address"], nonce=secrets.token_hex(8))
    for name in ("laptop", "laptop2"):
        lab.run(name, "mkdir -p /root/warm && cat > /root/warm/Dockerfile", capture=True, input=project)
    r = lab.run("laptop", f"docker buildx build --builder buildkit-ops --progress plain "
                          f"--cache-to type=registry,ref={ref},mode=max /root/warm", capture=True)
    assert r.returncode == 0, r.stderr[-2000:]
    r = lab.run("laptop2", f"docker buildx build --builder buildkit-ops --progress plain "
                           f"--cache-from type=registry,ref={ref} /root/warm", capture=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert set(step_states(r.stderr).values()) == {"CACHED"}, r.stderr[-2000:]


def test_a_new_pin_is_brought_to_the_builder_by_update_clients(fleet):
    lab, _ = fleet
    INV.write_text(INV.read_text().replace("home: build2", "home: build1"))
    rc, doc, err = invoke_json("update-clients", "--check")
    assert doc["hosts"]["laptop2"]["changed"] == 1 and doc["hosts"]["laptop"]["changed"] == 0
    assert invoke("update-clients").returncode == 0
    out = lab.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).stdout
    assert out.index("buildkit-ops-build1") < out.index("buildkit-ops-build2")
