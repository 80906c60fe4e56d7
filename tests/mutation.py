"""Mutation testing of the modules whose tests must catch what they name: mutmut (from PyPI, in a virtualenv of
its own, cached by its version) changes the code one mutant at a time and runs the unit tests that cover it; a
mutant the tests do not notice survives. Prints the kill ratio per module, and the survivors with --survivors.

    .venv/bin/python tests/mutation.py [--survivors] [PATH ...]

It works on a copy of the tree (under .test-mutation/): nothing in the checkout is changed. Not part of the
suite (minutes of CPU): its figures are in the closing notes of the issues that asked for them."""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = "mutmut==3.8.1"
VENV = Path("/var/cache/buildkit-ops") / f"mutmut-venv-{MUTMUT.split('==')[1]}"
WORK = ROOT / ".test-mutation"
TARGETS = ["buildkit_ops/inventory", "buildkit_ops/pki", "buildkit_ops/fleet", "roles/gateway/files.py",
           "roles/buildkitd/__init__.py", "roles/buildkitd/checks.py", "roles/buildkitd/absent.py",
           "roles/buildkitd/files.py"]
TESTS = ["tests/unit/engine/test_service.py", "tests/unit/inventory", "tests/unit/fleet", "tests/unit/pki", "tests/unit/roles", "tests/unit/flows/test_status.py"]


def venv() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        deps = re.findall(r'"([^"]+==[^"]+)"', (ROOT / "pyproject.toml").read_text())
        subprocess.run([str(python), "-m", "pip", "install", "-q", MUTMUT, *deps], check=True)
    return VENV / "bin" / "mutmut"


def tree(targets: list[str]) -> None:
    """The tree as the tests see it, roles/ inside the package (mutmut mutates files under one source root)."""
    shutil.rmtree(WORK, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", ".test-*", ".venv*", ".lab", ".lab-*", ".pki", ".pki-*", ".git")
    shutil.copytree(ROOT, WORK, ignore=ignore)
    (WORK / ".venv-scan").symlink_to(ROOT / ".venv-scan")
    paths = [t.replace("roles/", "buildkit_ops/roles/", 1) for t in targets]
    shutil.rmtree(WORK / "roles")
    shutil.copytree(ROOT / "roles", WORK / "buildkit_ops" / "roles", ignore=ignore)
    (WORK / "pyproject.toml").write_text((WORK / "pyproject.toml").read_text() + f"""
[tool.mutmut]
source_paths = {paths!r}
pytest_add_cli_args_test_selection = {TESTS!r}
also_copy = ["buildkit_ops", "tests", "inventory.yml", "docs", "lab", "templates", "README.md", "bench",
             "requirements.in", "requirements.txt", "tasks.py", "pytest.ini"]
""".replace("'", '"'))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", default=TARGETS)
    ap.add_argument("--survivors", action="store_true", help="list every mutant the tests did not kill")
    args = ap.parse_args()
    mutmut = venv()
    tree(args.paths)
    subprocess.run([str(mutmut), "run"], cwd=WORK, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = subprocess.run([str(mutmut), "results", "--all", "true"], cwd=WORK, capture_output=True, text=True).stdout
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    survivors = []
    for line in out.splitlines():
        m = re.match(r"\s*([\w.]+)\.x_\w+__mutmut_\d+: (.+)$", line.strip())
        if not m:
            continue
        module, status = m.group(1), m.group(2).strip()
        counts[module][status] += 1
        if status != "killed":
            survivors.append(line.strip())
    print(f"{'module':48} {'mutants':>7} {'killed':>7} {'ratio':>6}")
    for module in sorted(counts):
        c = counts[module]
        total = sum(c.values())
        print(f"{module:48} {total:7} {c['killed']:7} {c['killed'] / total:6.0%}")
    if args.survivors:
        print("\n".join(survivors))


if __name__ == "__main__":
    main()
