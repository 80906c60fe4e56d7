"""README behaviours of day-to-day operation, each proved against the host's real state: provision --force over
a running build, cache-prune by age, filter and --all, status' warnings (allowlist drift, a client certificate
about to expire, buildkitd down), a leaf rotation that cannot reach a client, add-client with --known-hosts and
--ssh-port, and remove-client deleting the client's files."""
from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
from helpers import (
    INV,
    ROOT,
    build,
    buildhosts,
    cache_total,
    inventory_variant,
    invoke,
    invoke_json,
    let_in,
    start_long_build,
    wait_for,
    wait_until_proxy_sends_home,
)

from buildkit_ops.pki import certs as pki

pytestmark = pytest.mark.lab

SOCK = "unix:///run/buildkit/buildkitd.sock"
CACHED_MOUNT = """FROM {reg}/lab/busybox:latest
ARG N
RUN --mount=type=cache,target=/c echo "$N" > /c/marker && ls /c > /seen
"""


def started(lab, host="build1") -> str:
    return lab.run(host, "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout.strip()


def records(lab, host="build1") -> list[dict]:
    r = lab.run(host, f"docker exec buildkitd buildctl --addr {SOCK} du --format '{{{{json .}}}}'", capture=True)
    return json.loads(r.stdout or "[]") or []


def test_provision_force_restarts_over_a_running_build(served, reg):
    variant = inventory_variant("parallelism", lambda d: d["all"]["vars"]["buildkit"].update(max_parallelism=3))
    start_long_build(served, reg, f"{reg['address']}/team/long:force")
    before = started(served)
    rc, doc, err = invoke_json("provision", "--host", "build1", "--wait", "1", "--force", "-i", variant)
    assert rc == 0, err
    steps = {s["name"]: s for s in doc["hosts"]["build1"]["steps"]}
    assert steps["running builds"]["detail"] == "1 build(s) interrupted (--force)"
    assert started(served) != before
    log = wait_for(lambda: (lambda t: t if "rc=" in t else None)(
        served.run("laptop", "cat /root/long.log", capture=True).stdout), timeout=60, what="the interrupted build")
    assert "rc=0" not in log   # the build did fail: --force said so
    assert invoke("provision", "--host", "build1").returncode == 0   # back to the session inventory


def test_cache_prune_by_age_by_filter_and_all(served, reg):
    served.run("laptop", "mkdir -p /root/cm && cat > /root/cm/Dockerfile", capture=True,
            input=CACHED_MOUNT.format(reg=reg["address"]))
    wait_until_proxy_sends_home(served)   # (build1 restarted just before: the build must land on it)
    r = served.run("laptop", "docker buildx build --builder buildkit-ops --build-arg N=$(date +%s%N) /root/cm",
                capture=True)
    assert r.returncode == 0, r.stderr[-2000:]
    kinds = {x["recordType"] for x in records(served)}
    assert "exec.cachemount" in kinds and len(kinds) > 1, kinds

    # everything was used within the last hour: keeping that much age prunes nothing
    before = len(records(served))
    rc, doc, err = invoke_json("cache-prune", "--host", "build1", "--keep-duration", "1h")
    assert rc == 0 and doc["hosts"]["build1"]["pruned_records"] == 0, err
    assert len(records(served)) == before

    # a filter prunes only what it names
    rc, doc, err = invoke_json("cache-prune", "--host", "build1", "--filter", "type==exec.cachemount")
    assert rc == 0 and doc["hosts"]["build1"]["pruned_records"] >= 1, err
    left = {x["recordType"] for x in records(served)}
    assert "exec.cachemount" not in left and left, left

    # --all takes internal and frontend records too: nothing is left that is not in use
    rc, doc, err = invoke_json("cache-prune", "--host", "build1", "--all", "--keep-storage", "0")
    assert rc == 0, err
    assert [x for x in records(served) if not x.get("inUse")] == [] and cache_total(served) == doc["hosts"]["build1"][
        "after"]["total"]


def test_status_warns_of_allowlist_drift_a_client_certificate_about_to_expire_and_buildkitd_down(served):
    leaf = pki.client_paths(INV.parent / ".pki", "laptop")
    saved_leaf = (leaf.crt.read_bytes(), leaf.key.read_bytes())
    served.run("build2", "ufw allow from 10.77.0.99 to any port 1234 proto tcp comment 'buildkit-ops client ghost'")
    served.run("build2", "docker stop buildkitd >/dev/null")
    try:
        pki.ensure_leaf(leaf, pki.load_ca(INV.parent / ".pki"), "laptop", 10, 1, force=True)   # 10 days left
        r = invoke("status", "--json")
        doc = json.loads(r.stdout)
        assert r.returncode == 0, r.stderr   # warnings, no failure
        assert doc["hosts"]["build2"]["firewall"]["extra"] == ["10.77.0.99"]
        assert doc["hosts"]["build2"]["buildkitd"]["state"] == "exited"
        warnings = doc["warnings"]
        assert any(w.startswith("build2: the firewall allowlist differs from the inventory's clients (missing [], "
                                "extra ['10.77.0.99'])") for w in warnings), warnings
        assert "build2: buildkitd is exited: run `invoke provision --host build2`" in warnings
        assert any(w.startswith("client laptop: certificate expires in ") and "rotate-certs --client laptop" in w
                   for w in warnings), warnings
    finally:
        leaf.crt.write_bytes(saved_leaf[0])
        leaf.key.write_bytes(saved_leaf[1])
        served.run("build2", "ufw delete allow from 10.77.0.99 to any port 1234 proto tcp")
        assert invoke("provision", "--host", "build2").returncode == 0


def test_add_client_with_known_hosts_and_ssh_port_then_remove_client_deletes_its_files(served):
    known_hosts = served.status()["known_hosts"]
    r = invoke("add-client", "laptop2", "--address", "10.77.0.22", "--ssh-port", "22", "--known-hosts", known_hosts)
    assert r.returncode == 0, r.stderr
    text = INV.read_text()
    assert f"known_hosts: {known_hosts}" in text and "ssh_port: 22" in text.split("laptop2:")[1]
    folder = "/root/.docker/buildkit-ops/buildkit-ops"
    assert served.run("laptop2", f"test -s {folder}/key.pem && stat -c %a {folder}/key.pem", capture=True).stdout == "600\n"

    # a leaf rotation that cannot reach the client says so and leaves its certificate as it was
    serial = pki.load_cert(pki.client_paths(INV.parent / ".pki", "laptop2").crt).serial_number
    served.run("laptop2", "systemctl stop ssh.socket ssh.service 2>/dev/null || systemctl stop ssh")
    try:
        r = invoke("rotate-certs", "--client", "laptop2")
        assert r.returncode == 1 and "not rotated: laptop2 (unreachable or failing, see above)" in r.stderr, r.stderr
        assert pki.load_cert(pki.client_paths(INV.parent / ".pki", "laptop2").crt).serial_number == serial
    finally:
        served.run("laptop2", "systemctl start ssh")

    r = invoke("remove-client", "laptop2")
    assert r.returncode == 0, r.stderr
    assert served.run("laptop2", f"test -e {folder}").returncode != 0   # certificates and key gone from the machine
    assert served.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).returncode != 0


def test_doctor_names_a_host_name_the_client_cannot_resolve(served):
    """Name resolution is the ladder's first rung. laptop resolves names from its own files only for this test
    (nsswitch `hosts: files`), so the unknown name below is never asked of a DNS server."""
    variant = inventory_variant("unresolvable", lambda d: buildhosts(d)["build1"].update(
        client_address="build1.unknown.lab"))
    served.run("laptop", "cp /etc/nsswitch.conf /etc/nsswitch.conf.bkops && "
                         "sed -i 's/^hosts:.*/hosts: files/' /etc/nsswitch.conf")
    try:
        r = invoke("doctor", "laptop", "-i", variant)
    finally:
        served.run("laptop", "mv /etc/nsswitch.conf.bkops /etc/nsswitch.conf")
    assert r.returncode == 1
    assert "build1: name resolution: build1.unknown.lab does not resolve on laptop" in r.stdout, r.stdout
    assert "build2: laptop -> 10.77.0.12:1234: reachable" in r.stdout


def test_add_client_check_shows_every_change_and_makes_none(served):
    inventory = INV.read_text()
    rules = {h: (served.run(h, "ufw show added", capture=True).stdout, let_in(served, h)) for h in ("build1", "build2")}
    served.run("laptop2", "docker buildx rm buildkit-ops >/dev/null 2>&1; rm -rf /root/.docker/buildkit-ops")
    r = invoke("add-client", "laptop2", "--address", "10.77.0.22", "--check")
    assert r.returncode == 0, r.stderr
    said = " ".join(r.stderr.split())
    for line in ("would change inventory: client laptop2 recorded in", "would change pki: client certificate would "
                 "issue (missing), CN=laptop2", "would change firewall: build1: port open to laptop2 (10.77.0.22) "
                 "+laptop2 (10.77.0.22)", "ok buildx_builder: docker buildx", "would change buildx_builder: builder "
                 "buildkit-ops", "RECAP (check mode: nothing was changed)"):
        assert line in said, (line, r.stderr)
    assert "PRIVATE KEY" not in r.stderr
    # nothing changed anywhere: the inventory, the PKI, the firewalls, the client machine
    assert INV.read_text() == inventory
    assert not pki.client_paths(INV.parent / ".pki", "laptop2").crt.exists()
    assert {h: (served.run(h, "ufw show added", capture=True).stdout, let_in(served, h))
            for h in ("build1", "build2")} == rules
    assert served.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).returncode != 0
    assert served.run("laptop2", "test -e /root/.docker/buildkit-ops").returncode != 0


def test_a_data_dir_on_a_path_others_may_write_is_refused_before_any_write(served):
    variant = inventory_variant("srvdir", lambda d: buildhosts(d)["build2"].setdefault("buildkit", {}).update(
        data_dir="/srv/bkops-test"))
    served.run("build2", "mkdir -p /srv && chmod 777 /srv")
    try:
        r = invoke("provision", "--host", "build2", "-i", variant)
        assert r.returncode == 1, r.stderr
        assert "/srv, on the way to buildkit.data_dir /srv/bkops-test, is owned by root with mode 777" in r.stderr
        assert served.run("build2", "test -e /srv/bkops-test").returncode != 0   # nothing was written
    finally:
        served.run("build2", "chmod 755 /srv")


def test_the_failover_proxy_answers_on_the_clients_loopback_only(served):
    """laptop's proxy shares laptop's network (no container address that a route to laptop's Docker bridge could
    reach) and binds 127.0.0.1: laptop reaches its listeners, another machine does not."""
    assert served.run("laptop", "nc -z -w3 127.0.0.1 12340").returncode == 0
    mode = served.run("laptop", "docker inspect -f '{{.HostConfig.NetworkMode}} {{.NetworkSettings.IPAddress}}' "
                                "buildkit-ops-proxy-buildkit-ops", capture=True).stdout.split()
    assert mode == ["host"], mode   # and no address of its own
    lines = served.run("laptop", "ss -ltnH 'sport = :12340'", capture=True).stdout.splitlines()
    assert [line.split()[3] for line in lines] == ["127.0.0.1:12340"]   # the local address: loopback, nothing else
    assert served.run("intruder", "nc -z -w3 10.77.0.21 12340").returncode != 0
    # a container on laptop (a static busybox lent to it) reaches neither laptop's bridge address nor the first
    # container address, where a proxy on the bridge would be
    subprocess.run(["docker", "cp", "/bin/busybox", "bkops-laptop:/tmp/bkops-busybox"], check=True)
    bridge = ["172.17.0.1", "172.17.0.2"]
    probe = "; ".join(f"/busybox nc -w 3 {a} </dev/null && echo OPEN {a}"   # (busybox nc has no -z)
                      for a in [*(f"{b} 12340" for b in bridge), "10.77.0.5 5000"])
    r = served.run("laptop", f"docker run --rm -v /tmp/bkops-busybox:/busybox:ro --entrypoint /busybox "
                             f"buildkit-ops/haproxy:lab sh -c {shlex.quote(probe)}", capture=True)
    assert r.stdout.split() == ["OPEN", "10.77.0.5", "5000"], r.stdout + r.stderr   # the lab registry only
    # intruder, routing to laptop's Docker bridge through laptop (Docker < 28 forwards that to containers)
    served.run("intruder", "ip route replace 172.17.0.0/24 via 10.77.0.21")
    try:
        for a in bridge:
            assert served.run("intruder", f"nc -z -w3 {a} 12340").returncode != 0, a
    finally:
        served.run("intruder", "ip route del 172.17.0.0/24 via 10.77.0.21")


def test_the_labs_buildkit_is_below_the_security_floor_and_a_second_client_needs_the_override(served):
    doc = json.loads(invoke("status", "--json").stdout)
    assert any(w.startswith("build1: BuildKit v0.13.2 lacks security fixes a shared server needs (v0.31.2: ")
               and "v0.33.1: blob digests are verified" in w and "v0.34.2: GHSA-w26x-xg27-7qjc" in w
               and "GHSA-2fqp-xg6f-v7gj" in w and w.endswith("run v0.34.2 or newer") for w in doc["warnings"]), \
        doc["warnings"]

    def without_override(d):
        d["all"]["vars"].pop("allow_outdated_buildkit")
        d["all"]["children"]["clients"]["hosts"]["laptop2"] = {"address": "10.77.0.22"}
    variant = inventory_variant("floor", without_override)
    rules = served.run("build1", "ufw show added", capture=True).stdout
    r = invoke("provision", "--host", "build1", "-i", variant)
    assert r.returncode == 1 and "BuildKit v0.13.2 lacks fixes a server shared by 2 clients needs" in r.stderr
    assert "allow_outdated_buildkit: true" in r.stderr
    assert served.run("build1", "ufw show added", capture=True).stdout == rules   # nothing changed


# ------------------------------------------------------------------ two operators, one host

def test_two_operators_provisioning_one_host_at_once_restart_it_once(served):
    """The same changed inventory from two runs at once: the second waits for the first's lock, then finds the
    host converged (before the lock, both restarted buildkitd, one after the other)."""
    inv = inventory_variant("twoops", lambda d: d["all"]["vars"]["buildkit"].update(max_parallelism=3))
    try:
        runs = [subprocess.Popen([sys.executable, "-m", "invoke", "provision", "--host", "build1", "-i", inv],
                                 cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for _ in range(2)]
        errs = [p.communicate(timeout=300)[1] for p in runs]
        assert [p.returncode for p in runs] == [0, 0], errs
        restarts = [e for e in errs if "recreate buildkitd (handler)" in e]
        waited = [e for e in errs if "host lock" in e and "waited" in e and "for the run of" in e]
        assert len(restarts) == 1 and len(waited) == 1 and "no changes" in waited[0], errs
    finally:
        assert invoke("provision", "--host", "build1").returncode == 0


def test_a_run_that_cannot_get_the_lock_stops_naming_its_holder_and_changes_nothing(served):
    from buildkit_ops.engine import host_lock
    holder = host_lock.script("carol@ops-laptop (rotate-certs, since 2026-12-01T21:00:00+00:00)", 1, 60)
    served.run("build1", "cat > /tmp/hold-lock.sh", input=holder)
    # (its own process group, recorded: ended by that, never by a name another process may share)
    served.run("build1", "setsid sh -c 'echo $$ > /tmp/hold-lock.pid; sleep 40 | sh /tmp/hold-lock.sh > "
                         "/tmp/hold-lock.out' >/dev/null 2>&1 &")
    wait_for(lambda: "@@locked" in served.run("build1", "cat /tmp/hold-lock.out", capture=True).stdout,
             timeout=10, what="the other operator's lock")
    toml = served.run("build1", "sha256sum /opt/buildkit-ops/buildkitd.toml", capture=True).stdout
    inv = inventory_variant("locked", lambda d: d["all"]["vars"]["buildkit"].update(max_parallelism=3))
    try:
        r = invoke("provision", "--host", "build1", "--lock-wait", "2", "-i", inv)
        assert r.returncode == 1, r.stderr
        assert ("another run holds the host's lock: carol@ops-laptop (rotate-certs, since "
                "2026-12-01T21:00:00+00:00); waited 2 s. Nothing was changed") in r.stderr, r.stderr
        assert served.run("build1", "sha256sum /opt/buildkit-ops/buildkitd.toml", capture=True).stdout == toml
        # check mode takes no lock, and status neither
        assert invoke("provision", "--host", "build1", "--check", "-i", inv).returncode == 0
        assert invoke_json("status", "--host", "build1")[0] == 0
    finally:
        served.run("build1", "kill -- -$(cat /tmp/hold-lock.pid) 2>/dev/null || true")


def test_the_pki_exported_deleted_and_imported_serves_as_before(served, reg, tmp_path):
    env = dict(os.environ, BKOPS_PKI_PASSPHRASE="the lab's export passphrase")

    def pki(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "invoke", *args, "-i", str(INV)], cwd=ROOT, capture_output=True,
                              text=True, env=env, stdin=subprocess.DEVNULL)
    assert pki("pki-export", str(tmp_path / "team-pki.age")).returncode == 0
    kept = tmp_path / "pki-kept"
    shutil.move(str(ROOT / ".pki"), kept)          # (put back below whatever happens)
    try:
        env["BKOPS_PKI_PASSPHRASE"] = "not the passphrase"
        r = pki("pki-import", str(tmp_path / "team-pki.age"))
        assert r.returncode == 1 and "wrong key or passphrase" in r.stderr and not (ROOT / ".pki").exists()
        env["BKOPS_PKI_PASSPHRASE"] = "the lab's export passphrase"
        r = pki("pki-import", str(tmp_path / "team-pki.age"))
        assert r.returncode == 0, r.stderr
        rc, doc, err = invoke_json("provision")
        assert rc == 0 and not doc["changed"], err
        r = build(served, "laptop", f"{reg['address']}/team/after-import:1")
        assert r.returncode == 0, r.stderr[-2000:]
    finally:
        if kept.exists():
            shutil.rmtree(ROOT / ".pki", ignore_errors=True)
            shutil.move(str(kept), ROOT / ".pki")
