"""bkops init against the lab, as an operator with a real VM would run it: the build host's SSH key is scanned and
checked against the fingerprint pinned on the command line (here: the one the lab wrote down when it made the
machine), the inventory it writes reaches the host with that known_hosts and nothing else, and without a
fingerprint and without a terminal nothing is trusted and nothing is written."""
from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT, fingerprint, lab_settings

pytestmark = pytest.mark.lab


def bkops(*args: str, cwd=ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "invoke", "-r", str(ROOT), *args], cwd=cwd, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL)


def test_init_pins_the_host_key_and_its_inventory_reaches_the_host(lab, tmp_path):
    team = tmp_path / "team"
    common = ("--host", "build1=10.77.0.11", "--client", "laptop=10.77.0.21",
              "--ssh-key", str(ROOT / ".lab/ssh/id_ed25519"))
    r = bkops("init", str(team), *common)
    assert r.returncode == 2 and "cannot be confirmed without a terminal: nothing was written" in r.stderr, r.stderr
    assert "SHA256:" in r.stderr and not team.exists()
    r = bkops("init", str(team), *common, "--fingerprint", f"build1={fingerprint('10.77.0.11')}",
              "--fingerprint", f"laptop={fingerprint('10.77.0.21')}")
    assert r.returncode == 0, r.stderr
    assert f"next: bkops provision --check -i {team}/inventory.yml" in r.stderr
    assert len((team / "known_hosts").read_text().splitlines()) == 2
    r = bkops("provision", "--check", "--host", "build1", "-i", str(team / "inventory.yml"))
    assert "host key changed" not in r.stderr and "unreachable=0 failed=0" in r.stderr
    assert "build1     ok           engine: docker engine and compose" in r.stderr, r.stderr[-3000:]
    assert "RECAP (check mode: nothing was changed)" in r.stderr
    r = bkops("init", str(team), *common)      # a second run: everything kept, nothing asked
    assert r.returncode == 0 and r.stderr.count("left as it is") == 3, r.stderr


def test_a_new_deployment_from_init_provisions_and_adds_a_client_and_then_refuses_a_changed_host_key(lab, tmp_path):
    from helpers import invoke
    lab.reset("build2")                            # a brand-new VM
    team = tmp_path / "team"
    r = bkops("init", str(team), "--host", "build2=10.77.0.12", "--client", "laptop2=10.77.0.22",
              "--ssh-key", str(ROOT / ".lab/ssh/id_ed25519"),
              "--fingerprint", f"build2={fingerprint('10.77.0.12')}", "--fingerprint",
              f"laptop2={fingerprint('10.77.0.22')}", *(a for s in lab_settings() for a in ("--set", s)))
    assert r.returncode == 0, r.stderr
    inventory = str(team / "inventory.yml")
    try:
        r = bkops("provision", "-i", inventory)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "answers over mutual TLS" in r.stderr
        r = bkops("add-client", "laptop2", "-i", inventory)
        assert r.returncode == 0, r.stderr[-3000:]
        assert lab.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).returncode == 0
        lab.reset("build2")                        # the same address, another machine
        r = bkops("provision", "-i", inventory)
        assert r.returncode != 0 and "build2 (root@10.77.0.12:22): the host key changed" in r.stderr, r.stderr[-2000:]
    finally:
        invoke("provision", "--host", "build2")   # (the session's build2 again, for the modules after this one)
