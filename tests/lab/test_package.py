"""The installable package and an operator's own directory: `pip install .` into a fresh virtualenv gives a `bkops`
command that works from any directory, without the checkout's tasks.py or lab; an inventory in a directory of the
operator's, with a roles/ folder (a role of their own, docs/examples/roles/hello) and a templates/ folder (an
override) beside it, is planned by --check, applied by provision, and a second run changes nothing."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml
from helpers import INV, ROOT, invoke

pytestmark = pytest.mark.lab

HELLO = "/etc/default/buildkit-ops-hello"
OVERRIDE = "# the operator's own version of the role's template\nGREETING={{ greeting }}\nSAID_BY=site-override\n"


@pytest.fixture(scope="module")
def bkops(lab, tmp_path_factory):
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    r = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", str(ROOT)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    site_packages = next(venv.glob("lib/python*/site-packages"))
    assert not (site_packages / "lab").exists() and not (site_packages / "tasks.py").exists()
    assert (site_packages / "buildkit_ops" / "roles" / "buildkitd" / "templates" / "buildkitd.toml.j2").is_file()
    assert invoke("provision").returncode == 0
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "bkops"), *args], cwd=elsewhere, env=env, capture_output=True,
                              text=True)
    return run


@pytest.fixture(scope="module")
def site(lab, tmp_path_factory):
    """The operator's directory: the lab's inventory (its paths made absolute), roles/hello and a template
    override beside it."""
    d = tmp_path_factory.mktemp("site")
    data = yaml.safe_load(INV.read_text())
    v = data["all"]["vars"]
    for key in ("pki_dir", "ssh_key", "known_hosts"):
        v[key] = str(ROOT / v[key])
    for key in ("image_archive", "gateway_image_archive"):
        v["buildkit"][key] = str(ROOT / v["buildkit"][key])
    for reg in v["buildkit"]["registries"].values():
        reg["ca"] = str(ROOT / reg["ca"])
    for c in data["all"]["children"]["clients"]["hosts"].values():
        if c.get("failover_image_archive"):
            c["failover_image_archive"] = str(ROOT / c["failover_image_archive"])
    (d / "inventory.yml").write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.copytree(ROOT / "docs" / "examples" / "roles" / "hello", d / "roles" / "hello")
    yield d
    lab.run("build1", f"rm -f {HELLO}")


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


def test_an_operators_role_is_planned_applied_and_then_left_alone(bkops, site, lab):
    inv = str(site / "inventory.yml")
    r = bkops("provision", "--check", "--host", "build1", "-i", inv)
    assert r.returncode == 0, r.stderr
    assert f"would change hello: {HELLO}" in " ".join(r.stderr.split()), r.stderr
    assert "+GREETING='hello from build1, one of 2 build host(s); team'" in r.stderr   # the diff, shell-quoted
    assert lab.run("build1", f"test -e {HELLO}").returncode == 1                      # check mode changed nothing

    r = bkops("provision", "--host", "build1", "-i", inv, "--json")
    assert r.returncode == 0, r.stderr
    steps = yaml.safe_load(r.stdout)["hosts"]["build1"]["steps"]
    roles = [s["role"] for s in steps]
    assert [s["status"] for s in steps if s["role"] == "hello"] == ["changed"]
    assert roles.index("hello") > max(i for i, role in enumerate(roles) if role == "buildkitd")   # after = buildkitd
    said = lab.run("build1", f". {HELLO}; printf '%s' \"$GREETING\"", capture=True).stdout
    assert said == "hello from build1, one of 2 build host(s); team's builds welcome"

    r = bkops("provision", "--host", "build1", "-i", inv, "--json")
    doc = yaml.safe_load(r.stdout)
    assert r.returncode == 0 and not doc["changed"], r.stderr
    assert doc["hosts"]["build1"]["hello"] == said and doc["hosts"]["build1"]["remote_commands"] == 1


def test_a_template_beside_the_inventory_overrides_the_roles_own_and_is_still_escaped(bkops, site, lab):
    (site / "templates").mkdir()
    (site / "templates" / "hello.env.j2").write_text(OVERRIDE)
    try:
        r = bkops("provision", "--host", "build1", "-i", str(site / "inventory.yml"))
        assert r.returncode == 0, r.stderr
        text = lab.run("build1", f"cat {HELLO}", capture=True).stdout
        assert text.startswith("# the operator's own version") and "SAID_BY=site-override\n" in text
        # the greeting (a quote and a `;` in it) is still one shell word: sourcing it runs nothing else
        said = lab.run("build1", f"sh -c '. {HELLO}; printf \"%s|%s\" \"$GREETING\" \"$SAID_BY\"'", capture=True)
        assert said.stdout == "hello from build1, one of 2 build host(s); team's builds welcome|site-override"
    finally:
        shutil.rmtree(site / "templates")


def test_an_operators_role_that_cannot_load_is_a_clear_error_and_nothing_changes(bkops, site, tmp_path):
    broken = site / "roles" / "broken"
    broken.mkdir()
    (broken / "__init__.py").write_text("ROLE = 42\n")
    try:
        r = bkops("provision", "--host", "build1", "-i", str(site / "inventory.yml"))
        assert r.returncode == 2 and "Traceback" not in r.stderr
        assert f"error: {broken / '__init__.py'}: it sets no ROLE" in r.stderr
    finally:
        shutil.rmtree(broken)
