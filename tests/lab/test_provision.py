"""`invoke provision` end to end on the lab: a fresh droplet becomes a mutual-TLS BuildKit
server behind a firewall, idempotently, with its cache surviving restarts."""
from __future__ import annotations

import os
import stat

import pytest
from helpers import INV, LAB, PKI, STATE, buildctl, buildhosts, inventory_variant, invoke_json, wait_for

from buildkit_ops.pki import certs as pki

pytestmark = pytest.mark.lab

B1 = LAB.address("build1")
B2 = LAB.address("build2")
SOCK = "unix:///run/buildkit/buildkitd.sock"


def steps(doc, host):
    return {f"{s['role']}: {s['name']}": s for s in doc["hosts"][host]["steps"]}


def started_at(lab, machine="build1") -> str:
    return lab.run(machine, "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout.strip()


def cache_ids(lab, machine="build1") -> set[str]:
    r = lab.run(machine, f"docker exec buildkitd buildctl --addr {SOCK} du", capture=True)
    assert r.returncode == 0, r.stderr
    return {line.split()[0] for line in r.stdout.splitlines()[1:] if line and not line.startswith(("Shared", "Private",
                                                                                                   "Reclaimable", "Total"))}


# ------------------------------------------------------------------ a fresh provision

def test_fresh_provision_changes_and_proves_mtls(provisioned):
    h = provisioned["hosts"]["build1"]
    assert h["failed"] == 0 and h["changed"] >= 8
    s = steps(provisioned, "build1")
    assert s["firewall: ssh 22/tcp allowed"]["status"] == "changed"
    assert s["verify: answers over mutual TLS"]["status"] == "ok"
    assert "TLSv1.3" in s["verify: answers over mutual TLS"]["detail"]
    assert "buildkitd v0.13.2" in h["buildkitd"]


def test_laptop_with_a_ca_signed_cert_runs_debug_workers(client_files, fresh):
    r = buildctl(fresh, "laptop", B1, "debug workers")
    assert r.returncode == 0, r.stderr
    assert "linux/amd64" in r.stdout


def refused_in_tls(fresh, **how) -> str:
    """buildctl's error for a refused client, right after the same call with laptop's own certificate worked (so
    the server was up and reachable: the refusal is the TLS handshake's, not a down server's)."""
    assert buildctl(fresh, "laptop", B1, "debug workers").returncode == 0
    r = buildctl(fresh, "laptop", B1, "debug workers", timeout=30, **how)
    assert r.returncode != 0 and "linux/amd64" not in r.stdout
    err = r.stderr.lower()
    assert "connection refused" not in err and "no route" not in err, r.stderr
    return err


def test_no_client_cert_is_refused(client_files, fresh):
    err = refused_in_tls(fresh, cert=False)
    assert any(w in err for w in ("certificate required", "bad certificate", "broken pipe")), err


def test_cert_from_another_ca_is_refused(client_files, fresh):
    err = refused_in_tls(fresh, where="/root/bk-other")
    assert any(w in err for w in ("unknown", "bad certificate", "certificate required", "broken pipe")), err


@pytest.mark.parametrize("which,reason", [("none", "CERTIFICATE_REQUIRED"), ("other", "UNKNOWN_CA")])
def test_tls_alert_says_why_a_client_is_refused(provisioned, tmp_path, which, reason):
    # the same check from the operator, through an SSH tunnel: the server's TLS alert names the reason
    import ssl

    from buildkit_ops import inventory
    from buildkit_ops.engine.session import SshSession
    from buildkit_ops.roles.gateway.probe import mtls_probe
    inv = inventory.load(INV)
    leaf = None
    if which == "other":
        other = pki.create_ca(tmp_path, 30, name="someone else's CA")
        leaf = pki.Leaf(tmp_path / "c.crt", tmp_path / "c.key")
        pki.ensure_leaf(leaf, other, "intruder", 30, 1)
    sess = SshSession.to_host(inv.hosts["build1"])
    try:
        with pytest.raises(ssl.SSLError, match=reason):
            mtls_probe(sess, inv.hosts["build1"], (PKI / "ca.crt").read_bytes(), leaf)
    finally:
        sess.close()


def test_firewall_blocks_intruder_and_keeps_ssh_open(provisioned, fresh):
    assert fresh.run("intruder", f"nc -z -w3 {B1} 1234", capture=True).returncode != 0
    assert fresh.run("laptop", f"nc -z -w3 {B1} 1234", capture=True).returncode == 0
    for src in ("intruder", "laptop", "build2"):
        assert fresh.run(src, f"nc -z -w3 {B1} 22", capture=True).returncode == 0, src
    # the port is not published through Docker's NAT: buildkitd runs with host networking
    r = fresh.run("build1", "iptables -t nat -S 2>/dev/null | grep -c 1234 || true", capture=True)
    assert r.stdout.strip() == "0"


def test_second_run_changes_nothing_and_restarts_nothing(provisioned, fresh):
    before = started_at(fresh)
    rc, doc, err = invoke_json("provision", "--host", "build1")
    assert rc == 0, err
    h = doc["hosts"]["build1"]
    assert h["changed"] == 0 and not doc["changed"]
    assert "no changes" in err
    assert h["remote_commands"] == 1
    assert started_at(fresh) == before


def test_cache_survives_container_restart_and_machine_reboot(client_files, fresh):
    # put something in the cache: a real build through mutual TLS from laptop
    fresh.run("laptop", "mkdir -p /root/ctx && echo hello > /root/ctx/hello.txt && "
                        "printf 'FROM scratch\\nCOPY hello.txt /\\n' > /root/ctx/Dockerfile", capture=True)
    r = buildctl(fresh, "laptop", B1, "build --frontend dockerfile.v0 --local context=/root/ctx "
                                      "--local dockerfile=/root/ctx")
    assert r.returncode == 0, r.stderr
    ids = cache_ids(fresh)
    assert ids

    fresh.run("build1", "docker restart buildkitd", capture=True)
    wait_for(lambda: buildctl(fresh, "laptop", B1, "debug workers").returncode == 0, what="buildkitd after restart")
    assert ids <= cache_ids(fresh)

    os.system(f"docker restart {LAB.container('build1')} >/dev/null")
    wait_for(lambda: buildctl(fresh, "laptop", B1, "debug workers").returncode == 0, timeout=120,
             what="buildkitd after the machine restarted")
    assert ids <= cache_ids(fresh)
    # the firewall came back with the machine
    assert fresh.run("intruder", f"nc -z -w3 {B1} 1234", capture=True).returncode != 0
    r = buildctl(fresh, "laptop", B1, "build --frontend dockerfile.v0 --local context=/root/ctx "
                                      "--local dockerfile=/root/ctx")
    assert r.returncode == 0 and "CACHED" in r.stderr, r.stderr


def test_check_mode_on_a_converged_host_shows_nothing(provisioned, fresh):
    before = started_at(fresh)
    rc, doc, err = invoke_json("provision", "--host", "build1", "--check")
    assert rc == 0, err
    assert not doc["changed"]
    assert "---" not in err and "+++" not in err
    assert started_at(fresh) == before


def test_gc_policy_change_is_shown_by_check_mode_then_applied(provisioned, fresh):
    def edit(d):
        d["all"]["vars"]["buildkit"]["gc"]["policies"][0]["keep_duration"] = "24h"
    inv = inventory_variant("gc", edit)
    toml = "/opt/buildkit-ops/buildkitd.toml"
    before = fresh.run("build1", f"sha256sum {toml}", capture=True).stdout
    rc, doc, err = invoke_json("provision", "--host", "build1", "--check", "-i", inv)
    assert rc == 0, err
    changed = [n for n, s in steps(doc, "build1").items() if s["status"] == "would change"]
    assert changed == ["buildkitd: buildkitd.toml", "buildkitd: recreate buildkitd (handler)"]
    diff = [l for l in err.splitlines() if l[:1] in ("+", "-") and not l.startswith(("+++", "---"))]
    assert diff == ['-    keepDuration = "172800s"', '+    keepDuration = "86400s"']
    assert fresh.run("build1", f"sha256sum {toml}", capture=True).stdout == before

    rc, doc, err = invoke_json("provision", "--host", "build1", "-i", inv)
    assert rc == 0, err
    applied = applied_gc_rules(fresh)
    assert applied[0]["Keep Duration"] == "24h0m0s"
    assert applied[1:] == DEFAULT_GC_APPLIED[1:]
    # and back to the shipped inventory
    rc, doc, err = invoke_json("provision", "--host", "build1")
    assert rc == 0 and doc["changed"]
    assert applied_gc_rules(fresh) == DEFAULT_GC_APPLIED


DEFAULT_GC_APPLIED = [
    {"All": "false", "Filters": "type==source.local type==exec.cachemount type==source.git.checkout",
     "Keep Duration": "48h0m0s"},
    {"All": "false", "Keep Duration": "1440h0m0s"},
    {"All": "false", "Keep Bytes": "5GB"},
    {"All": "true", "Keep Bytes": "10GB"},
]


def applied_gc_rules(lab) -> list[dict]:
    """The GC policy buildkitd actually applied (it ignores unknown config keys silently)."""
    r = lab.run("build1", f"docker exec buildkitd buildctl --addr {SOCK} debug workers -v", capture=True)
    rules: list[dict] = []
    for line in r.stdout.splitlines():
        if line.startswith("GC Policy rule#"):
            rules.append({})
        elif rules and line.startswith("\t") and ":" in line:
            k, v = line.strip().split(":", 1)
            rules[-1][k.strip()] = v.strip()
    return rules


def test_two_hosts_in_parallel_one_through_sudo(provisioned, fresh):
    pub = (STATE / "ssh/id_ed25519.pub").read_text()
    fresh.run("build2", "id deploy >/dev/null 2>&1 || useradd -m -s /bin/sh deploy; "
                        "echo 'deploy ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/deploy; "
                        "install -d -o deploy -m 700 /home/deploy/.ssh && cat > /home/deploy/.ssh/authorized_keys && "
                        "chown deploy /home/deploy/.ssh/authorized_keys", capture=True, input=pub)
    inv = inventory_variant("sudo", lambda d: buildhosts(d)["build2"].update(ssh_user="deploy"))
    rc, doc, err = invoke_json("provision", "--host", "buildhosts", "-i", inv)
    assert rc == 0, err
    assert doc["hosts"]["build1"]["changed"] == 0
    assert doc["hosts"]["build2"]["changed"] > 5
    assert "build1     : ok=" in err and "build2     : ok=" in err
    r = buildctl(fresh, "laptop", B2, "debug workers")
    assert r.returncode == 0, r.stderr
    assert fresh.run("intruder", f"nc -z -w3 {B2} 1234", capture=True).returncode != 0


def test_ca_key_is_private_and_on_no_lab_machine(provisioned, fresh):
    key = PKI / "ca.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    needle = key.read_text().splitlines()[1]
    for m in ("build1", "build2", "laptop", "intruder"):
        r = fresh.run(m, f"grep -rlF -- '{needle}' /etc /opt /root /home /tmp /var/lib/docker/volumes 2>/dev/null; "
                         "true", capture=True)
        assert r.stdout.strip() == "", f"CA key material found on {m}: {r.stdout}"
