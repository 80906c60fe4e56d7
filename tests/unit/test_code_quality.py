"""The code's own checks run with the tests: ruff (lint and import order) on everything, mypy --strict on the
product package as it is installed (roles/ inside it: pyproject.toml holds both configurations)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

# The package as pip installs it (buildkit_ops/roles from the repository's roles/), for the tools that find
# modules by folder: mypy, and a Python without the checkout's registration of the roles.
VIEW = ROOT / ".test-package-view"


def installed_view() -> Path:
    shutil.rmtree(VIEW, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "buildkit_ops", VIEW / "buildkit_ops", ignore=ignore)
    shutil.copytree(ROOT / "roles", VIEW / "buildkit_ops" / "roles", ignore=ignore)
    return VIEW


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_is_clean_on_the_product_package():
    r = subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir",
                        str(ROOT / ".mypy_cache")], cwd=installed_view(), capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout


def test_the_product_package_never_imports_the_lab():
    """`import buildkit_ops` (and every module of it) works where there is no lab/ folder at all."""
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(installed_view() / "buildkit_ops", Path(d) / "buildkit_ops")
        code = ("import importlib, pkgutil, buildkit_ops, sys\n"
                "for m in pkgutil.walk_packages(buildkit_ops.__path__, 'buildkit_ops.'): importlib.import_module(m.name)\n"
                "assert not [m for m in sys.modules if m == 'lab' or m.startswith('lab.')], 'lab imported'\n"
                "print('ok')")
        r = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
