"""`invoke provision` refuses what it cannot do before changing anything: a changed host key, a refused login,
a user without sudo, a port taken by another program; an unreachable host fails while the others go on."""
from __future__ import annotations

import os

import pytest
from helpers import ROOT, buildhosts, inventory_variant, invoke, invoke_json, wait_for

pytestmark = pytest.mark.lab

B1 = "10.77.0.11"
B2 = "10.77.0.12"


def nothing_changed_on_build2(lab):
    r = lab.run("build2", "test -e /opt/buildkit-ops && echo present; ufw status | head -1; docker ps -aq | wc -l",
                capture=True)
    assert r.stdout.split() == ["Status:", "inactive", "0"], r.stdout


def test_changed_host_key_is_refused_and_nothing_changes(fresh):
    kh = (ROOT / ".lab/known_hosts").read_text()
    key_b1 = next(l for l in kh.splitlines() if l.startswith(B1 + " ")).split(" ", 1)[1]
    forged = ROOT / ".test-inv-forged-known-hosts"
    forged.write_text(f"{B2} {key_b1}\n")
    try:
        inv = inventory_variant("hostkey", lambda d: buildhosts(d)["build2"].update(known_hosts=str(forged)))
        r = invoke("provision", "--host", "build2", "-i", inv)
    finally:
        forged.unlink()
    assert r.returncode == 1
    assert "the host key changed" in r.stderr and "ssh-keygen -R 10.77.0.12" in r.stderr
    nothing_changed_on_build2(fresh)


def test_refused_login_is_clear(fresh, tmp_path):
    stranger = tmp_path / "id_stranger"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {stranger}")
    inv = inventory_variant("login", lambda d: buildhosts(d)["build2"].update(ssh_key=str(stranger)))
    r = invoke("provision", "--host", "build2", "-i", inv)
    assert r.returncode == 1
    assert "login refused" in r.stderr and "check ssh_user and ssh_key" in r.stderr
    nothing_changed_on_build2(fresh)


def test_unreachable_host_fails_but_others_go_on(provisioned, fresh):
    def edit(d):
        buildhosts(d)["ghost"] = {"address": "10.77.0.99", "connect_timeout": 2}
        buildhosts(d).pop("build2")
    inv = inventory_variant("ghost", edit)
    rc, doc, err = invoke_json("provision", "--host", "ghost,build1", "-i", inv)
    assert rc == 1
    assert doc["hosts"]["ghost"]["unreachable"] and "unreachable" in doc["hosts"]["ghost"]["error"]
    assert doc["hosts"]["build1"]["failed"] == 0 and doc["hosts"]["build1"]["error"] is None
    assert "ghost      : ok=0 changed=0 unreachable=1 failed=1" in err


def test_user_without_sudo_is_refused_before_any_change(fresh):
    pub = (ROOT / ".lab/ssh/id_ed25519.pub").read_text()
    fresh.run("build2", "id nosudo >/dev/null 2>&1 || useradd -m -s /bin/sh nosudo; "
                        "install -d -o nosudo -m 700 /home/nosudo/.ssh && cat > /home/nosudo/.ssh/authorized_keys && "
                        "chown nosudo /home/nosudo/.ssh/authorized_keys", capture=True, input=pub)
    inv = inventory_variant("nosudo", lambda d: buildhosts(d)["build2"].update(ssh_user="nosudo"))
    r = invoke("provision", "--host", "build2", "-i", inv)
    assert r.returncode == 1
    assert "user nosudo has no passwordless sudo" in r.stderr
    nothing_changed_on_build2(fresh)


def test_port_already_taken_is_refused_before_any_change(fresh):
    fresh.run("build2", "nohup nc -lk 1234 >/dev/null 2>&1 & echo $! > /tmp/nc.pid", capture=True)
    wait_for(lambda: ":1234 " in fresh.run("build2", "ss -ltnH", capture=True).stdout, what="nc on port 1234")
    try:
        r = invoke("provision", "--host", "build2")
    finally:
        fresh.run("build2", "kill $(cat /tmp/nc.pid)", capture=True)
    assert r.returncode == 1
    assert "port 1234 is already taken on build2 by" in r.stderr and "nc" in r.stderr
    nothing_changed_on_build2(fresh)


