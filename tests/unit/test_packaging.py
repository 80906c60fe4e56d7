"""One import name per role, however buildkit-ops runs: from a checkout (no links needed), or installed by pip
(roles/ mapped into the package). pyproject.toml's package list names every package folder."""
from __future__ import annotations

import subprocess
import sys
import tomllib

from conftest import ROOT


def test_a_role_has_one_import_name_and_one_role_object():
    code = ("import sys; sys.path.insert(0, '.')\n"
            "from buildkit_ops.engine import role_path\n"
            "import buildkit_ops.roles.gateway as g\n"
            "[loaded] = [r for r in role_path.load(None) if r.name == 'gateway']\n"
            "assert type(loaded) is type(g.ROLE), 'two classes: the role was imported twice'\n"
            "try:\n    import roles.gateway\nexcept ImportError as e:\n    print('refused:', e)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "refused: the built-in roles are imported as buildkit_ops.roles, not as roles"


def test_the_repository_holds_no_symbolic_link():
    """A checkout on a filesystem without symlinks (or a zip of the repository) is the same product."""
    files = subprocess.run(["git", "ls-files", "-s"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert [line for line in files.splitlines() if line.startswith("120000")] == []


def test_the_package_list_names_every_package_folder():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert conf["package-dir"] == {"buildkit_ops.roles": "roles"}
    folders = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "buildkit_ops").rglob("__init__.py")}
    folders |= {"buildkit_ops." + ".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "roles").rglob("__init__.py")}
    assert set(conf["packages"]) == folders
