"""Shared fixtures. tests/unit needs no machine; tests/lab runs against real machines (`invoke lab.up`):
if the lab cannot come up, those tests error loudly, they never skip.

Lab tests never write the tracked inventory.yml: they work on a session copy beside it
(helpers.INV, passed to every task as -i), so a crashed run leaves `git status` clean."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))   # conftest, helpers, unit_helpers (tests import by --import-mode=importlib)

from helpers import INV, LAB, lab_inventory  # noqa: E402

from buildkit_ops.engine import ssh as remote  # noqa: E402
from lab.machines import Lab  # noqa: E402


def pytest_collection_modifyitems(items):
    # unit tests first, then the lab's (each lab module's fixtures bring the machines to the state it needs)
    for it in items:
        if "tests/lab/" in str(it.path).replace(os.sep, "/"):
            it.add_marker(pytest.mark.lab)
    items.sort(key=lambda it: it.get_closest_marker("lab") is not None)


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: end-to-end test on the local lab (real SSH, TLS, firewall)")
    config.stash[TRACKED] = (ROOT / "inventory.yml").read_bytes()


TRACKED = pytest.StashKey[bytes]()


@pytest.fixture(scope="session")
def lab() -> Lab:
    lab = LAB
    lab.up(log=lambda m: print(m, file=sys.stderr))
    INV.write_text(lab_inventory())
    yield lab
    INV.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def lab_status(lab):
    return lab.status()


def ssh(lab: Lab, name: str, known_hosts: str | None = None):
    st = lab.status()
    return remote.connect(name, lab.address(name), "root", 22, st["ssh_key"], known_hosts or st["known_hosts"], 10)


_ran = {"lab_passed": 0, "skipped": 0}


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed and "lab" in report.keywords:
        _ran["lab_passed"] += 1
    if report.skipped:
        _ran["skipped"] += 1


def pytest_collectreport(report):
    # a module-level `pytest.skip(allow_module_level=True)` is a skipped collection, not a skipped test
    if report.skipped:
        _ran["skipped"] += 1


def pytest_sessionfinish(session, exitstatus):
    """No test may write the tracked inventory.yml. In CI the end-to-end tests must have run: none passing,
    or any skipped, fails the run."""
    if (ROOT / "inventory.yml").read_bytes() != session.config.stash[TRACKED]:
        print("\nthe tracked inventory.yml was changed by a test: tests must use helpers.INV", file=sys.stderr)
        session.exitstatus = 1
    if not os.environ.get("CI") or exitstatus not in (0, 5):
        return
    if _ran["lab_passed"] == 0 or _ran["skipped"]:
        print(f"\nCI: {_ran['lab_passed']} lab tests passed, {_ran['skipped']} skipped: the end-to-end tests "
              f"must run and pass in CI", file=sys.stderr)
        session.exitstatus = 1
