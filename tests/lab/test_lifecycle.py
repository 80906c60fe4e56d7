"""Months of service on the lab: certificate rotation during a build, CA rotation with an interruption,
cache pruning, status and doctor."""
from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from helpers import (
    INV,
    LAB,
    PKI,
    ROOT,
    buildctl,
    buildhosts,
    cache_total,
    inventory_variant,
    invoke,
    invoke_json,
    login,
    put_client_files,
    start_long_build,
    wait_for,
    wait_until_proxy_sends_home,
)
from helpers import build as build_now

from buildkit_ops.pki import certs as pki
from lab.buildx_progress import step_states

pytestmark = pytest.mark.lab


def build(lab, machine, tag, **kw):
    """A build from `machine` once laptop's failover proxy sends builds to build1 again (these tests restart it
    and expect its cache)."""
    wait_until_proxy_sends_home(lab)
    return build_now(lab, machine, tag, **kw)


B1 = LAB.address("build1")


def test_rotate_certs_waits_for_a_running_build_and_keeps_the_cache(served, reg):
    first = build(served, "laptop", f"{reg['address']}/team/app:pre")  # the project is in the cache
    assert first.returncode == 0, first.stderr[-2000:]
    tag = f"{reg['address']}/team/long:1"
    start_long_build(served, reg, tag)
    old = pki.client_paths(PKI, "laptop").crt.read_bytes()
    r = invoke("rotate-certs")
    assert r.returncode == 0, r.stderr
    assert pki.client_paths(PKI, "laptop").crt.read_bytes() != old
    # laptop's builder was refreshed, not reshaped: add-client finds nothing to change
    r = invoke("add-client", "laptop")
    assert r.returncode == 0 and "changed=0" in r.stderr, r.stderr
    log = wait_for(lambda: (lambda t: t if "rc=" in t else None)(
        served.run("laptop", "cat /root/long.log", capture=True).stdout), timeout=60, what="the long build")
    assert "rc=0" in log, log[-2000:]
    assert "pushing manifest" in log
    # the build had finished before buildkitd restarted, and the cache survived the restart
    again = build(served, "laptop", f"{reg['address']}/team/app:rot")
    assert again.returncode == 0, again.stderr[-2000:]
    assert set(step_states(again.stderr).values()) == {"CACHED"}


def test_rotate_certs_goes_on_over_a_running_build_which_finishes(served, reg):
    """The certificates are the gateway's: a rotation reloads it gracefully; buildkitd is not restarted and the
    build in flight (its connection held by the old worker) succeeds."""
    start_long_build(served, reg, f"{reg['address']}/team/long:2")
    before = served.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout
    r = invoke("rotate-certs", "--host", "build1", "--wait", "2")
    assert r.returncode == 0, r.stderr
    assert "gateway reloaded; buildkitd and running builds untouched" in r.stderr
    assert served.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout == before
    wait_for(lambda: "rc=" in served.run("laptop", "cat /root/long.log", capture=True).stdout, timeout=90,
             what="the long build")
    assert "rc=0" in served.run("laptop", "cat /root/long.log", capture=True).stdout
    assert "no changes" in invoke("provision", "--host", "build1").stderr


def test_ca_rotation_survives_a_kill_and_then_refuses_old_certificates(served, reg, tmp_path):
    d = PKI
    old_ca = (d / "ca.crt").read_bytes()
    old_leaf = pki.client_paths(d, "laptop")
    put_client_files(served, "laptop", {"ca.crt": old_ca, "client.crt": old_leaf.crt.read_bytes(),
                                        "client.key": old_leaf.key.read_bytes()}, where="/root/bk-old")
    assert buildctl(served, "laptop", B1, "debug workers", where="/root/bk-old").returncode == 0

    # kill the rotation once phase 2 is done
    p = subprocess.Popen([sys.executable, "-m", "invoke", "rotate-certs", "--ca", "-i", str(INV)], cwd=ROOT,
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    seen = []
    for line in p.stderr:
        seen.append(line)
        if "phase 2/5 servers-trust-both" in line:
            p.send_signal(signal.SIGKILL)
            break
    p.wait()
    assert p.returncode == -signal.SIGKILL, "".join(seen)
    state = pki.rotation_state(d)
    assert state["done"] == ["next-ca", "servers-trust-both"]
    # nobody is stranded mid-rotation: laptop still builds with its old certificate
    mid = build(served, "laptop", f"{reg['address']}/team/app:mid")
    assert mid.returncode == 0, mid.stderr[-2000:]

    r = invoke("rotate-certs", "--ca")
    assert r.returncode == 0, r.stderr
    assert "phases already done: next-ca, servers-trust-both" in r.stderr
    assert "phase 5/5 drop-old" in r.stderr
    assert not (d / "rotation.yml").exists() and not (d / "next").exists()
    assert (d / "ca.crt").read_bytes() != old_ca

    # the old certificate (what a removed client would still hold) is refused; the new one works
    old = buildctl(served, "laptop", B1, "debug workers", where="/root/bk-old", timeout=30)
    assert old.returncode != 0 and "linux/amd64" not in old.stdout
    assert "connection refused" not in old.stderr.lower()     # refused in the handshake (the new one works below)
    new_leaf = pki.client_paths(d, "laptop")
    put_client_files(served, "laptop", {"ca.crt": (d / "ca.crt").read_bytes(), "client.crt": new_leaf.crt.read_bytes(),
                                        "client.key": new_leaf.key.read_bytes()}, where="/root/bk-new")
    assert buildctl(served, "laptop", B1, "debug workers", where="/root/bk-new").returncode == 0
    again = build(served, "laptop", f"{reg['address']}/team/app:after")
    assert again.returncode == 0, again.stderr[-2000:]
    assert set(step_states(again.stderr).values()) == {"CACHED"}


MANY = """FROM {reg}/lab/busybox:latest
ARG N
RUN echo "$N" > /n && sleep 20
"""


def test_sixteen_builds_of_two_clients_survive_a_ca_rotation_and_buildkitd_is_never_restarted(served, reg):
    """CA rotation provisions every host three times and every client once: the servers' new files reach the
    gateways by graceful reloads (each old worker finishes its connections), so builds in flight all finish."""
    r = invoke("add-client", "laptop2", "--address", LAB.address("laptop2"))
    assert r.returncode == 0, r.stderr
    login(served, "laptop2", reg)
    for machine in ("laptop", "laptop2"):
        served.run(machine, "mkdir -p /root/many && cat > /root/many/Dockerfile", capture=True,
                   input=MANY.format(reg=reg["address"]))
    started = {h: served.run(h, "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout
               for h in ("build1", "build2")}
    wait_until_proxy_sends_home(served)
    runs = [(machine, i) for machine in ("laptop", "laptop2") for i in range(8)]
    for machine, i in runs:
        subprocess.run(["docker", "exec", "-d", served.container(machine), "sh", "-c",
                        f"docker buildx build --builder buildkit-ops --progress plain --build-arg N={time.time_ns()} "
                        f"/root/many > /root/many-{i}.log 2>&1; echo rc=$? >> /root/many-{i}.log"], check=True)

    def log(machine, i):
        return served.run(machine, f"cat /root/many-{i}.log", capture=True).stdout
    # every build under way (its step started or queued on a host) before the rotation begins
    wait_for(lambda: all("load build definition" in log(m, i) for m, i in runs), timeout=60,
             what="16 builds under way")
    r = invoke("rotate-certs", "--ca")
    assert r.returncode == 0, r.stderr[-3000:]
    wait_for(lambda: all("rc=" in log(m, i) for m, i in runs), timeout=240, what="16 builds to end")
    failed = {(m, i): log(m, i)[-800:] for m, i in runs if "rc=0" not in log(m, i)}
    assert not failed, failed
    assert {h: served.run(h, "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout
            for h in ("build1", "build2")} == started
    assert invoke("remove-client", "laptop2").returncode == 0


def test_a_config_change_restarts_the_hosts_one_at_a_time(served):
    """A change that restarts buildkitd rolls over the fleet: the second host waits for the first to answer
    again (and for the failover proxies to trust it again) before it goes down."""
    inv = inventory_variant("parallelism", lambda d: d["all"]["vars"]["buildkit"].update(max_parallelism=3))
    try:
        r = invoke("provision", "-i", inv)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stderr.count("restart turn") == 1 and "(one host at a time)" in r.stderr, r.stderr
        started = sorted(dt.datetime.fromisoformat(served.run(h, "docker inspect -f '{{.State.StartedAt}}' buildkitd",
                                                              capture=True).stdout.strip()[:19])
                         for h in ("build1", "build2"))
        assert (started[1] - started[0]).total_seconds() >= 4, started
    finally:
        assert invoke("provision").returncode == 0


def test_cache_prune_check_changes_nothing_then_keep_storage_frees(served):
    total = cache_total(served)
    assert total > 1_000_000
    rc, doc, err = invoke_json("cache-prune", "--host", "build1", "--check")
    assert rc == 0 and doc["hosts"]["build1"]["before"]["total"] == total
    assert cache_total(served) == total
    rc, doc, err = invoke_json("cache-prune", "--host", "build1", "--keep-storage", "1MB")
    assert rc == 0, err
    h = doc["hosts"]["build1"]
    assert h["freed"] > 0 and h["after"]["total"] <= 1_000_000 and h["before"]["total"] - h["freed"] <= 1_000_000
    assert cache_total(served) == h["after"]["total"]
    assert "freed" in err


def test_cache_prune_needs_a_criterion(served):
    r = invoke("cache-prune")
    assert r.returncode == 2 and "say what to prune" in r.stderr


def test_status_reports_expiry_and_flags_names_that_no_longer_match(served):
    rc, doc, err = invoke_json("status")
    assert rc == 0, err
    assert doc["ca"]["days_left"] > 3000
    b1 = doc["hosts"]["build1"]
    assert b1["server_certificate"]["names_match"] and b1["server_certificate"]["days_left"] > 800
    assert b1["buildkitd"]["state"] == "running" and b1["firewall"]["allowed"] == [LAB.address("laptop")]
    assert doc["clients"]["laptop"]["certificate"]["expires"]
    inv = inventory_variant("names", lambda d: buildhosts(d)["build1"].update(names=["build1.lab", "build1.example"]))
    rc, doc, err = invoke_json("status", "-i", inv)
    sc = doc["hosts"]["build1"]["server_certificate"]
    assert not sc["names_match"] and sc["missing_names"] == ["build1.example"]
    assert any("build1: the server certificate's names" in w for w in doc["warnings"])
    assert doc["hosts"]["build2"]["server_certificate"]["names_match"]


def test_status_warns_of_a_certificate_expiring_within_30_days(served):
    short = inventory_variant("short", lambda d: d["all"]["vars"].update(cert_days=20, cert_renew_days=5))
    try:
        r = invoke("rotate-certs", "--host", "build2", "-i", short)
        assert r.returncode == 0, r.stderr
        rc, doc, err = invoke_json("status", "-i", short)
        assert doc["hosts"]["build2"]["server_certificate"]["days_left"] in (19, 20)
        assert any(w.startswith("build2: server certificate expires in ") and "rotate-certs --host build2" in w
                   for w in doc["warnings"]), doc["warnings"]
        assert not any(w.startswith("build1: server certificate expires") for w in doc["warnings"])
    finally:
        assert invoke("rotate-certs", "--host", "build2").returncode == 0
    rc, doc, err = invoke_json("status")
    assert doc["hosts"]["build2"]["server_certificate"]["days_left"] > 800


def expired_cert(ca: pki.CA, cn: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=10)).not_valid_after(now - dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_doctor_says_what_is_wrong_in_one_line(served, tmp_path):
    r = invoke("doctor", "laptop")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("reachable, certificates valid and trusted") == 2

    # intruder: a machine that thinks it is a client, but the firewall does not know it
    inv = inventory_variant("intruder", lambda d: d["all"]["children"]["clients"]["hosts"].update(
        intruder={"address": LAB.address("intruder")}))
    r = invoke("doctor", "intruder", "-i", inv)
    assert r.returncode == 1
    assert f"build1: TCP blocked: intruder cannot connect to {B1}:1234" in r.stdout

    # laptop2, set up properly, then given an expired certificate, then one from another CA
    assert invoke("add-client", "laptop2", "--address", LAB.address("laptop2")).returncode == 0
    files = "/root/.docker/buildkit-ops/buildkit-ops"
    crt, key = expired_cert(pki.load_ca(PKI), "laptop2")
    put_client_files(served, "laptop2", {"cert.pem": crt, "key.pem": key}, where=files)
    r = invoke("doctor", "laptop2")
    assert r.returncode == 1
    assert "build1: expired certificate: laptop2's client certificate expired on" in r.stdout
    assert "rotate-certs --client laptop2" in r.stdout

    other = pki.create_ca(tmp_path, 30, name="someone else's CA")
    crt, key = pki.issue(other, "laptop2", 30)
    put_client_files(served, "laptop2", {"cert.pem": crt, "key.pem": key}, where=files)
    r = invoke("doctor", "laptop2")
    assert r.returncode == 1
    assert "build1: TLS unknown CA: laptop2's certificate was issued by" in r.stdout and "someone else" in r.stdout

    # and add-client mends it
    assert invoke("add-client", "laptop2").returncode == 0
    assert invoke("doctor", "laptop2").returncode == 0
    # a builder removed by hand
    served.run("laptop2", "docker buildx rm buildkit-ops", capture=True)
    r = invoke("doctor", "laptop2")
    assert r.returncode == 1 and "build1: builder missing: laptop2 has no buildx builder buildkit-ops" in r.stdout


def test_scheduled_prune_is_a_systemd_timer_and_goes_when_the_key_goes(served):
    r = served.run("build1", "systemctl is-enabled buildkit-ops-prune.timer; systemctl is-active "
                             "buildkit-ops-prune.timer; systemctl start buildkit-ops-prune.service && echo ran",
                   capture=True)
    assert r.stdout.split() == ["enabled", "active", "ran"], r.stdout + r.stderr
    unit = served.run("build1", "cat /etc/systemd/system/buildkit-ops-prune.service", capture=True).stdout
    assert "prune --keep-storage 20000" in unit
    inv = inventory_variant("noprune", lambda d: d["all"]["vars"]["buildkit"].pop("prune_schedule"))
    rc, doc, err = invoke_json("provision", "--host", "build1", "-i", inv)
    assert rc == 0, err
    assert [s["detail"] for s in doc["hosts"]["build1"]["steps"] if s["role"] == "prune"] == [
        "removed (no buildkit.prune_schedule)"]
    assert served.run("build1", "ls /etc/systemd/system/ | grep -c buildkit-ops-prune", capture=True).stdout.strip() == "0"
    # the buildkitd container was not restarted for it, and the shipped inventory puts it back
    assert not any(s["name"].startswith("recreate") for s in doc["hosts"]["build1"]["steps"])
    assert invoke("provision", "--host", "build1").returncode == 0
    assert served.run("build1", "systemctl is-active buildkit-ops-prune.timer", capture=True).stdout.strip() == "active"
