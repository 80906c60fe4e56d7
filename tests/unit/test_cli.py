"""One command-line convention: every task that reads the inventory takes -i/--inventory, and
`invoke TASK --help` prints the task's help for every task, positional arguments or not."""
from __future__ import annotations

import pytest
from helpers import invoke

INVENTORY_TASKS = ["provision", "add-client", "remove-client", "list-clients", "update-clients", "rotate-certs", "cache-prune",
                   "status", "doctor", "builds", "k8s-manifests"]
ALL_TASKS = INVENTORY_TASKS + ["demo", "lab.up", "lab.down", "lab.status", "lab.run"]


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
