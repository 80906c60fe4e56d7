"""Two build hosts that both work: laptop and laptop2 have different home hosts, each one's builds land on
its home host (its build history grows there, not on the other), both caches grow, and update-clients
changes nothing when the fleet did not change. laptop's builds fail over to build2 while build1 is down
(its failover proxy) and go home when build1 is back; a build for amd64 and arm64 is split between build1
(amd64) and build2 (arm64 by emulation) and pushed as one index."""
from __future__ import annotations

import base64
import io
import json
import secrets
import ssl
import tarfile
import time
import urllib.request

import pytest
import yaml
from helpers import INV, invoke, invoke_json, restore_inventory, wait_for

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
                       ("laptop2", ["--address", lab.address("laptop2"), "--home", "build2"])):
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


def build(lab, client: str, project: str, *args: str):
    lab.run(client, "mkdir -p /root/p && cat > /root/p/Dockerfile", capture=True, input=project)
    t0 = time.monotonic()
    r = lab.run(client, "docker buildx build --builder buildkit-ops --progress plain " + " ".join(args) + " /root/p",
                capture=True)
    return r, time.monotonic() - t0


def test_builds_fail_over_while_the_home_host_is_down_and_go_home_when_it_is_back(fleet):
    lab, reg = fleet
    project = PROJECT.format(reg=reg["address"], nonce=secrets.token_hex(8))
    r, warm = build(lab, "laptop", project)
    assert r.returncode == 0, r.stderr[-2000:]
    before = {h: histories(lab, h) for h in ("build1", "build2")}
    lab.run("build1", "docker stop buildkitd", capture=True)
    try:
        r, took = build(lab, "laptop", PROJECT.format(reg=reg["address"], nonce=secrets.token_hex(8)))
        assert r.returncode == 0, r.stderr[-2000:]
        assert histories(lab, "build2") == before["build2"] + 1
        print(f"\nfailover: the first build after build1 stopped took {took:.2f}s (a build at home {warm:.2f}s)")
    finally:
        since = lab.run("laptop", "date +%s", capture=True).stdout.strip()
        lab.run("build1", "docker start buildkitd", capture=True)
    # the proxy's health checks see build1 again (two passed checks, 2 s apart)
    proxy = "buildkit-ops-proxy-buildkit-ops"
    wait_for(lambda: "build1/build1 is UP" in lab.run("laptop", f"docker logs --since {since} {proxy} 2>&1",
                                                      capture=True).stdout, timeout=30, what="build1 back in the proxy")
    home_before = histories(lab, "build1")
    r, _ = build(lab, "laptop", PROJECT.format(reg=reg["address"], nonce=secrets.token_hex(8)))
    assert r.returncode == 0, r.stderr[-2000:]
    assert histories(lab, "build1") == home_before + 1


def registry_get(reg: dict, path: str, accept: str = "") -> bytes:
    ctx = ssl.create_default_context(cafile=reg["ca"])
    req = urllib.request.Request(f"https://{reg['address']}{path}")
    token = base64.b64encode(f"{reg['username']}:{reg['password']}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    if accept:
        req.add_header("Accept", accept)
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return r.read()


def test_a_build_for_two_platforms_runs_each_on_a_host_that_serves_it_and_pushes_one_index(fleet):
    lab, reg = fleet
    project = (f"FROM {reg['address']}/lab/busybox:multiarch\n"
               f"RUN echo {secrets.token_hex(8)} > /n && uname -m > /arch && cp /bin/busybox /busybox-copy\n")
    before = {h: histories(lab, h) for h in ("build1", "build2")}
    r, took = build(lab, "laptop", project, "--platform linux/amd64,linux/arm64", "--push",
                    f"-t {reg['address']}/lab/multi:test")
    assert r.returncode == 0, r.stderr[-2000:]
    print(f"\namd64 + arm64 (emulated) build and push: {took:.2f}s")
    # one build per host: amd64 on build1 (declared amd64 only), arm64 on build2 (emulated)
    assert {h: histories(lab, h) - before[h] for h in before} == {"build1": 1, "build2": 1}
    index = json.loads(registry_get(reg, "/v2/lab/multi/manifests/test", "application/vnd.oci.image.index.v1+json,"
                                    "application/vnd.docker.distribution.manifest.list.v2+json"))
    images = {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]
              if m["platform"]["os"] != "unknown"}  # (attestation manifests are platform unknown/unknown)
    assert set(images) == {"linux/amd64", "linux/arm64"}
    accept = "application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.loads(registry_get(reg, f"/v2/lab/multi/manifests/{images['linux/arm64']}", accept))
    top = manifest["layers"][-1]["digest"]  # the RUN step's layer
    with tarfile.open(fileobj=io.BytesIO(registry_get(reg, f"/v2/lab/multi/blobs/{top}"))) as tar:
        arch = tar.extractfile("arch").read().decode().strip()
        elf = tar.extractfile("busybox-copy").read(20)
    assert arch == "aarch64"
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 0xB7  # e_machine EM_AARCH64


def test_status_counts_each_hosts_builds_and_gives_them_to_the_clients_that_ran_them(fleet):
    lab, reg = fleet
    homes = {row["name"]: row["home"] for row in json.loads(invoke("list-clients", "--json").stdout)
             if row["name"] in ("laptop", "laptop2") and not row["status"].startswith("revoked")}
    before = json.loads(invoke("status", "--json").stdout)["hosts"]
    runs = {"laptop": 3, "laptop2": 2}
    for name, n in runs.items():
        for _ in range(n):
            r, _ = build(lab, name, PROJECT.format(reg=reg["address"], nonce=secrets.token_hex(8)))
            assert r.returncode == 0, r.stderr[-2000:]
    after = json.loads(invoke("status", "--json").stdout)["hosts"]
    for host in ("build1", "build2"):
        b, a = before[host]["builds"]["24h"], after[host]["builds"]["24h"]
        mine = {c: n for c, n in runs.items() if homes[c] == host}   # each client builds on its home
        assert a["builds"] - b["builds"] == sum(mine.values()), (host, homes, b, a)
        for client, n in mine.items():
            assert a["clients"].get(client, 0) - b["clients"].get(client, 0) == n, (host, client, b, a)
        assert a["failed"] == b["failed"]
        if mine:
            assert a["median_seconds"] > 0 and 0 <= a["cache_hit_ratio"] <= 1
        assert after[host]["cache"]["gc_limit"] == 10 * 10**9 and after[host]["cache"]["disk_free"] > 0
    home2 = homes["laptop2"]
    r = invoke("builds", "--host", home2, "--since", "1h", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)[home2]["builds"]
    assert [row["client"] for row in rows[:runs["laptop2"]]] == ["laptop2"] * runs["laptop2"]
    assert rows[0]["result"] == "ok" and rows[0]["steps_total"] >= 2
    text = invoke("status", "--prometheus").stdout
    assert f'buildkit_ops_client_builds{{host="{homes["laptop"]}",window="24h",client="laptop"}}' in text


def first_node(lab, client: str) -> str:
    """The first node of the client's builder, as buildx on that machine reports it (where its builds go)."""
    out = lab.run(client, "docker buildx inspect buildkit-ops", capture=True).stdout
    return out.split("Nodes:", 1)[1].split("Name:", 1)[1].split()[0]


def test_a_third_host_joins_every_builder_once_and_moves_only_the_clients_whose_home_changed(fleet):
    """build3 joins with a large weight: laptop2, no longer pinned, moves to it (its rendezvous score with build3
    at weight 1000 beats build1's); laptop, pinned to build1, stays. Every builder gains its node in one
    update-clients run and the second run changes nothing. Then build3 leaves again."""
    lab, reg = fleet
    saved = INV.read_text()
    lab.up(names=["build3"], log=lambda m: None)
    try:
        data = yaml.safe_load(saved)
        data["all"]["children"]["buildhosts"]["hosts"]["build3"] = {"address": lab.address("build3"), "names": ["build3.lab"],
                                                                    "platforms": ["linux/amd64"], "weight": 1000}
        data["all"]["children"]["clients"]["hosts"]["laptop2"].pop("home")
        INV.write_text(yaml.safe_dump(data, sort_keys=False))
        r = invoke("provision", "--host", "build3")
        assert r.returncode == 0, r.stderr
        homes = {row["name"]: row["home"] for row in json.loads(invoke("list-clients", "--json").stdout)
                 if not row["status"].startswith("revoked")}
        assert homes == {"laptop": "build1", "laptop2": "build3"}
        rc, doc, err = invoke_json("update-clients", "--check")
        # a new node for each builder; laptop's failover proxy gains a listener too
        assert {h: d["changed"] for h, d in doc["hosts"].items()} == {"laptop": 2, "laptop2": 1}
        assert first_node(lab, "laptop") == "buildkit-ops-build1" and first_node(lab, "laptop2") != "buildkit-ops-build3"
        r = invoke("update-clients")
        assert r.returncode == 0, r.stderr
        r = invoke("update-clients")
        assert r.returncode == 0 and r.stderr.count("changed=0") == 2, r.stderr
        assert (first_node(lab, "laptop"), first_node(lab, "laptop2")) == ("buildkit-ops-build1", "buildkit-ops-build3")
        assert "buildkit-ops-build3" in lab.run("laptop", "docker buildx inspect buildkit-ops", capture=True).stdout
    finally:
        INV.write_text(saved)
        lab.remove("build3")
    r = invoke("update-clients")
    assert r.returncode == 0, r.stderr
    assert "buildkit-ops-build3" not in lab.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).stdout
