"""One command-line convention: every task that reads the inventory takes -i/--inventory, and
`invoke TASK --help` prints the task's help for every task, positional arguments or not."""
from __future__ import annotations

import pytest
from helpers import ROOT, invoke

INVENTORY_TASKS = ["provision", "add-client", "remove-client", "list-clients", "update-clients", "rotate-certs", "cache-prune",
                   "status", "doctor", "builds", "audit", "report", "k8s-manifests", "pki-export", "pki-import",
                   "remove-tenant", "ci-snippet", "remove-ci-trust"]
ALL_TASKS = INVENTORY_TASKS + ["init", "demo", "lab.up", "lab.down", "lab.status", "lab.run", "ci-login"]


@pytest.mark.parametrize("task", ALL_TASKS)
def test_task_help_works_after_the_task_name(task):
    r = invoke(task, "--help")
    assert r.returncode == 0, r.stderr
    assert f"Usage: inv[oke] [--core-opts] {task}" in r.stdout
    assert "Docstring:" in r.stdout and "Options:" in r.stdout


@pytest.mark.parametrize("task", INVENTORY_TASKS)
def test_every_inventory_task_takes_dash_i(task):
    r = invoke("--help", task)
    assert "-i STRING, --inventory=STRING" in r.stdout, r.stdout


def test_no_other_option_takes_dash_i():
    for task in ALL_TASKS:
        lines = [l for l in invoke("--help", task).stdout.splitlines() if l.strip().startswith("-i")]
        assert all("--inventory" in l for l in lines), (task, lines)


def test_dash_i_reaches_the_task(tmp_path):
    r = invoke("list-clients", "-i", str(tmp_path / "nowhere.yml"))
    assert r.returncode == 2
    assert f"{tmp_path}/nowhere.yml: (file): the inventory file does not exist" in r.stderr


def test_pki_export_and_import_from_the_command_line_with_the_passphrase_in_the_environment(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    from conftest import ROOT

    from buildkit_ops.pki import certs
    from buildkit_ops.program import task_words
    for who in ("ops1", "ops2"):
        (tmp_path / who).mkdir()
        shutil.copy(ROOT / "inventory.yml", tmp_path / who / "inventory.yml")
    certs.create_ca(tmp_path / "ops1" / ".pki", 30)
    env = dict(os.environ, BKOPS_PKI_PASSPHRASE="a long passphrase for the test")

    def run(who: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "invoke", "-r", str(ROOT), *args, "-i",
                               str(tmp_path / who / "inventory.yml")], capture_output=True, text=True, env=env,
                              stdin=subprocess.DEVNULL)
    r = run("ops1", "pki-export", str(tmp_path / "pki.age"))
    assert r.returncode == 0 and "sealed with age for the passphrase" in r.stderr, r.stderr
    assert "PRIVATE KEY" not in r.stdout + r.stderr and "a long passphrase" not in r.stdout + r.stderr
    r = run("ops2", "pki-import", str(tmp_path / "pki.age"))
    assert r.returncode == 0 and "files imported" in r.stderr, r.stderr
    assert (tmp_path / "ops2/.pki/ca.key").read_bytes() == (tmp_path / "ops1/.pki/ca.key").read_bytes()
    del env["BKOPS_PKI_PASSPHRASE"]
    r = run("ops2", "pki-import", str(tmp_path / "pki.age"))
    assert r.returncode == 2 and "no passphrase: set BKOPS_PKI_PASSPHRASE" in r.stderr and "Traceback" not in r.stderr
    assert task_words(["bkops", "pki", "export", "f.age"]) == ["bkops", "pki-export", "f.age"]


@pytest.mark.parametrize("phrase,ok", [("short-one", False), ("twelve-chars", True)])
def test_the_passphrase_floor_holds_for_the_environment_too(monkeypatch, capsys, phrase, ok):
    """BKOPS_PKI_PASSPHRASE is a source like the prompt: a short one seals nothing (and opens what it sealed)."""
    from invoke.exceptions import Exit

    from buildkit_ops import cli
    monkeypatch.setenv(cli.PASSPHRASE_ENV, phrase)
    if ok:
        assert cli.passphrase(confirm=True) == phrase
    else:
        with pytest.raises(Exit):
            cli.passphrase(confirm=True)
        assert "fewer than 12 characters" in capsys.readouterr().err
    assert cli.passphrase(confirm=False) == phrase


def test_provision_roles_takes_role_names_and_instances_and_refuses_anything_else():
    r = invoke("provision", "--check", "--roles", "firewall,bogus", "-i", str(ROOT / "inventory.yml"))
    assert r.returncode == 2 and "--roles: 'bogus' is not a role of the build hosts" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr
    r = invoke("provision", "--check", "--roles", "buildkitd[red];id", "-i", str(ROOT / "inventory.yml"))
    assert r.returncode == 2 and "one instance of one as buildkitd[TENANT]" in r.stderr
    from buildkit_ops import inventory
    from buildkit_ops.tasks import run_roles
    inv = inventory.load(ROOT / "inventory.yml")
    assert run_roles(inv, "firewall, buildkitd[red]") == frozenset({"firewall", "buildkitd[red]"})


def test_the_ci_tasks_say_what_is_wrong_without_a_traceback(tmp_path):
    r = invoke("ci-snippet", "nope", "-i", str(ROOT / "inventory.yml"))
    assert r.returncode == 2 and "there is no CI trust 'nope' under all.vars.ci_trust" in r.stderr, r.stderr
    r = invoke("ci-login", "--host", "build1", "--ca", str(tmp_path / "missing.crt"), "--out", str(tmp_path / "o"),
               "--token-file", str(tmp_path / "missing-token"))
    assert r.returncode == 2 and "missing-token: cannot be read" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "o").exists()
    r = invoke("remove-ci-trust", "../x", "-i", str(ROOT / "inventory.yml"))
    assert r.returncode == 2 and "'../x'" in r.stderr and "Traceback" not in r.stderr, r.stderr
