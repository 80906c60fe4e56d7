"""The installable package: `pip install .` gives a `bkops` command that works from any directory, without
the checkout's tasks.py or lab (here: installed into a scratch folder, run from another one, against the lab)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import INV, ROOT, invoke

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def bkops(lab, tmp_path_factory):
    target = tmp_path_factory.mktemp("installed")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not (target / "lab").exists() and not (target / "tasks.py").exists()
    assert invoke("provision").returncode == 0
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = dict(os.environ, PYTHONPATH=str(target))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(target / "bin" / "bkops"), *args], cwd=elsewhere, env=env, capture_output=True,
                              text=True)
    return run


def test_bkops_lists_the_product_tasks_from_any_directory(bkops):
    r = bkops("--list")
    assert r.returncode == 0, r.stderr
    tasks = [line.split()[0] for line in r.stdout.splitlines()[1:] if line.startswith("  ") and line.strip()]
    assert {"provision", "add-client", "status", "doctor"} <= set(tasks)
    assert not [t for t in tasks if t.startswith("lab.") or t == "demo"]
    assert "-i STRING, --inventory=STRING" in bkops("add-client", "--help").stdout


def test_bkops_provision_check_against_the_lab(bkops):
    r = bkops("provision", "--check", "-i", str(INV))
    assert r.returncode == 0, r.stderr
    assert "RECAP (check mode: nothing was changed)" in r.stderr and "no changes" in r.stderr
