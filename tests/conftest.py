"""Shared fixtures. The lab tests run against real machines (`invoke lab.up`);
if the lab cannot come up, they error loudly: they never skip."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from buildkit_ops import remote  # noqa: E402
from lab.machines import Lab  # noqa: E402

LAB_ORDER = ["test_lab", "test_provision", "test_engine", "test_clients", "test_lifecycle", "test_trust_boundary",
             "test_readme"]


def pytest_collection_modifyitems(items):
    # unit tests first; then the lab tests, which share one lab, in the order the product is used
    def key(it):
        if it.get_closest_marker("lab") is None:
            return (0, 0)
        mod = it.module.__name__.rsplit(".", 1)[-1]
        return (1, LAB_ORDER.index(mod) if mod in LAB_ORDER else len(LAB_ORDER))
    items.sort(key=key)


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: end-to-end test on the local lab (real SSH, TLS, firewall)")


@pytest.fixture(scope="session")
def lab() -> Lab:
    lab = Lab()
    lab.up(log=lambda m: print(m, file=sys.stderr))
    return lab


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


def pytest_sessionfinish(session, exitstatus):
    """In CI the end-to-end tests must have run: none passing, or any skipped, fails the run."""
    if not os.environ.get("CI") or exitstatus not in (0, 5):
        return
    if _ran["lab_passed"] == 0 or _ran["skipped"]:
        print(f"\nCI: {_ran['lab_passed']} lab tests passed, {_ran['skipped']} skipped: the end-to-end tests "
              f"must run and pass in CI", file=sys.stderr)
        session.exitstatus = 1
