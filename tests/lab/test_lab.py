"""The lab is made of real machines: SSH with pinned host keys, a registry that
requires a login, distinct addresses that reach each other, and a clean down."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, ssh

from buildkit_ops.engine import ssh as remote
from lab.machines import Lab

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("name", ["build1", "laptop"])
def test_fabric_connects_with_lab_key_and_pinned_host_key(lab, name):
    conn = ssh(lab, name)
    r = conn.run("hostname && id -u")
    assert r.stdout.split() == [name, "0"]
    conn.close()


def test_changed_host_key_is_refused(lab, tmp_path):
    # build1's address with build2's key: exactly what a rebuilt or impersonated host looks like
    lines = (ROOT / ".lab/known_hosts").read_text().splitlines()
    key_of = {l.split()[0]: " ".join(l.split()[1:]) for l in lines}
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{lab.address('build1')} {key_of[lab.address('build2')]}\n")
    with pytest.raises(remote.RemoteError, match="the host key changed"):
        ssh(lab, "build1", known_hosts=str(kh))


def test_unknown_host_key_is_refused(lab, tmp_path):
    kh = tmp_path / "known_hosts"
    kh.write_text("")
    with pytest.raises(remote.RemoteError, match="not in .*never accepted blindly"):
        ssh(lab, "laptop", known_hosts=str(kh))
    assert kh.read_text() == ""  # nothing was added


def test_registry_refuses_anonymous_push_and_accepts_the_lab_login(lab, lab_status):
    reg = lab_status["registry"]
    ref = f"{reg['address']}/lab/busybox:latest"
    pushed = f"{reg['address']}/lab/anon-probe:1"
    login = lab.run("laptop", f"docker login -u {reg['username']} --password-stdin {reg['address']}",
                    capture=True, input=reg["password"])
    assert login.returncode == 0, login.stderr
    r = lab.run("laptop", f"docker pull -q {ref} && docker tag {ref} {pushed} && docker push {pushed}", capture=True)
    assert r.returncode == 0, r.stderr
    lab.run("laptop", f"docker logout {reg['address']}", capture=True)
    r = lab.run("laptop", f"docker push {pushed}", capture=True)
    assert r.returncode != 0
    assert "no basic auth credentials" in (r.stdout + r.stderr)
    r = lab.run("laptop", f"curl -s --cacert /etc/docker/certs.d/{reg['address']}/ca.crt -o /dev/null -w '%{{http_code}}' https://{reg['address']}/v2/_catalog",
                capture=True)
    assert r.stdout == "401"


def test_machines_have_distinct_addresses_and_reach_each_other(lab, lab_status):
    addrs = {n: m["address"] for n, m in lab_status["machines"].items()}
    assert len(set(addrs.values())) == len(addrs)
    for src, dst in [("laptop", "build1"), ("intruder", "build1"), ("build1", "laptop"), ("build2", "build1")]:
        r = lab.run(src, f"ip -4 -o addr show eth0; ping -c1 -W2 {addrs[dst]} && nc -z -w2 {addrs[dst]} 22",
                    capture=True)
        assert r.returncode == 0, f"{src} -> {dst}: {r.stdout}{r.stderr}"
        assert addrs[src] in r.stdout


def test_lab_status_json_lists_machines_and_registry(lab):
    out = subprocess.run([sys.executable, "-m", "invoke", "lab.status", "--json"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout
    st = json.loads(out)
    assert set(st["machines"]) >= {"build1", "build2", "laptop", "intruder", "registry"}
    assert all(m["address"].startswith("10.77.0.") for m in st["machines"].values())
    assert st["registry"]["username"] and st["registry"]["password"]


def test_lab_run_streams_output_and_exit_status(lab):
    r = subprocess.run([sys.executable, "-m", "invoke", "lab.run", "laptop", "docker buildx version; exit 7"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 7
    assert "github.com/docker/buildx 0.13" in r.stdout


def test_lab_down_leaves_nothing_behind(lab, tmp_path):
    # A second, tiny lab on its own subnet, so the shared lab stays up.
    small = Lab(prefix="bkopstest", subnet="10.78.0", state=tmp_path / "state", images=False)
    try:
        small.up(["intruder", "laptop"], log=lambda m: None)
        assert small.status()["machines"]["intruder"]["state"] == "running"
        assert small.leftovers()
    finally:
        small.down(log=lambda m: None)
    assert small.leftovers() == []
    assert not (tmp_path / "state").exists()
    # and the shared lab was not touched
    assert lab.status()["machines"]["build1"]["state"] == "running"
