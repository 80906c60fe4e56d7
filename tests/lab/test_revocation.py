"""Revocation that holds where an attacker chooses: a PKI state older than a host's (a second operator behind,
an export from before a remove-client) changes nothing on any host and `status` calls it stale; without the CA
key nothing signs and nothing changes, while what only reads still works."""
from __future__ import annotations

import re
import shutil

import pytest
import yaml
from helpers import INV, PKI, ROOT, VARIANTS, invoke, invoke_json, lab_ip

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def hosts(lab):
    """build1 and build2 provisioned from the session inventory (a no-op when an earlier module did it)."""
    r = invoke("provision")
    assert r.returncode == 0, r.stderr
    return lab


def started(lab) -> str:
    return lab.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout.strip()


def crl_on(lab, host: str) -> str:
    return lab.run(host, "cat /opt/buildkit-ops/gateway/crl.pem", capture=True).stdout


def test_a_pki_state_older_than_a_host_changes_nothing_anywhere_and_status_calls_it_stale(hosts, tmp_path, monkeypatch):
    """A second operator imports an export made before a remove-client: their provision would put back the
    older CRL and reopen the firewall for the removed client. It stops before any change, on every host."""
    lab = hosts
    saved = INV.read_text()
    monkeypatch.setenv("BKOPS_PKI_PASSPHRASE", "correct horse battery staple")
    r = invoke("add-client", "ci-gone", "--connection", "none", "--address", lab_ip(41))
    assert r.returncode == 0, r.stderr
    stale_inv, stale_pki = ROOT / f"{VARIANTS}stale.yml", f"{VARIANTS}stale-pki"
    stale_inv.write_text(re.sub(r"(?m)^(\s*)pki_dir: .*$", rf"\1pki_dir: {stale_pki}", INV.read_text()))
    assert f"pki_dir: {stale_pki}\n" in stale_inv.read_text()
    try:
        assert invoke("pki-export", str(tmp_path / "before.age")).returncode == 0
        assert invoke("remove-client", "ci-gone").returncode == 0
        r = invoke("pki-import", str(tmp_path / "before.age"), "-i", str(stale_inv))
        assert r.returncode == 0, r.stderr
        before = {h: (crl_on(lab, h), lab.run(h, "ufw status", capture=True).stdout) for h in ("build1", "build2")}
        assert lab_ip(41) not in before["build1"][1]
        r = invoke("provision", "-i", str(stale_inv))
        assert r.returncode != 0
        for h in ("build1", "build2"):
            assert f"{h} enforces CRL" in r.stderr and "this PKI state is older" in r.stderr, r.stderr
            assert (crl_on(lab, h), lab.run(h, "ufw status", capture=True).stdout) == before[h], h
        rc, doc, err = invoke_json("status", "-i", str(stale_inv))
        assert rc != 0 and doc["hosts"]["build1"]["crl"]["standing"] == "ahead", doc["hosts"]["build1"]["crl"]
        assert any("this PKI state is older" in f for f in doc["failures"]), doc["failures"]
        assert invoke("provision").returncode == 0            # (control: the current state provisions)
    finally:
        INV.write_text(saved)
        shutil.rmtree(ROOT / stale_pki, ignore_errors=True)


def test_without_the_ca_key_nothing_signs_nothing_changes_and_status_still_works(hosts):
    lab = hosts
    pki = PKI
    saved = INV.read_text()
    data = yaml.safe_load(saved)
    bk = data["all"]["vars"]["buildkit"]
    bk["max_parallelism"] = bk.get("max_parallelism", 4) + 1   # (a change provision would make without signing)
    changed = yaml.safe_dump(data, sort_keys=False)
    config = lab.run("build1", "cat /opt/buildkit-ops/buildkitd.toml", capture=True).stdout
    since = started(lab)
    (pki / "ca.key").rename(pki / "ca.key.offline")
    try:
        INV.write_text(changed)
        for args in (("provision",), ("add-client", "ci-new", "--connection", "none", "--address", lab_ip(42))):
            r = invoke(*args)
            assert r.returncode != 0 and "the CA's key is missing" in r.stderr, (args, r.stderr)
            assert "Traceback" not in r.stderr
        assert "ci-new" not in INV.read_text() and not (pki / "clients" / "ci-new").exists()
        assert INV.read_text() == changed
        assert lab.run("build1", "cat /opt/buildkit-ops/buildkitd.toml", capture=True).stdout == config
        assert started(lab) == since and not (pki / "ca.key").exists()
        rc, doc, err = invoke_json("status", "--host", "build1")
        assert doc["hosts"]["build1"]["reachable"] and doc["ca"]["days_left"] > 0, err
        assert doc["hosts"]["build1"]["buildkitd"]["state"] == "running", err
        assert invoke("list-clients").returncode == 0
    finally:
        (pki / "ca.key.offline").rename(pki / "ca.key")
        INV.write_text(saved)
    r = invoke("add-client", "ci-new", "--connection", "none", "--address", lab_ip(42))   # the key back: it signs
    assert r.returncode == 0, r.stderr
    assert invoke("remove-client", "ci-new").returncode == 0
