"""The code's own checks run with the tests: ruff (lint and import order) on everything, mypy --strict on the
product package (pyproject.toml holds both configurations)."""
from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_ruff_is_clean():
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict_is_clean_on_the_product_package():
    r = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout


def test_the_product_package_never_imports_the_lab():
    """`import buildkit_ops` (and every module of it) works where there is no lab/ folder at all."""
    import shutil
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        shutil.copytree(ROOT / "buildkit_ops", Path(d) / "buildkit_ops",
                        ignore=shutil.ignore_patterns("__pycache__"))
        code = ("import importlib, pkgutil, buildkit_ops, sys\n"
                "for m in pkgutil.walk_packages(buildkit_ops.__path__, 'buildkit_ops.'): importlib.import_module(m.name)\n"
                "assert not [m for m in sys.modules if m == 'lab' or m.startswith('lab.')], 'lab imported'\n"
                "print('ok')")
        r = subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
