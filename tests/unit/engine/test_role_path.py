"""Where roles come from: the built-in ones in their order, and an operator's beside the inventory, each joining
after the role it names; what cannot be used is refused with the file and the reason."""
from __future__ import annotations

import shutil

import pytest
from conftest import ROOT

from buildkit_ops.engine import role_path
from buildkit_ops.engine.role_path import RoleError

HELLO = ROOT / "docs" / "examples" / "roles" / "hello"


def names(d, targets="host") -> list[str]:
    return [r.name for r in role_path.load(d, targets)]


def test_the_built_in_roles_in_their_order(tmp_path):
    assert names(tmp_path) == ["engine", "firewall", "vpn", "emulation", "buildkitd", "ci_issuer", "gateway",
                               "prune", "connections"]
    assert names(tmp_path, "client") == ["ci_runner", "vpn_client", "failover_proxy", "buildx_builder"]
    assert names(ROOT) == names(tmp_path)   # this repository's own roles/ are not an operator's


def test_an_operators_role_joins_after_the_role_it_names(tmp_path):
    shutil.copytree(HELLO, tmp_path / "roles" / "hello")
    assert names(tmp_path) == ["engine", "firewall", "vpn", "emulation", "buildkitd", "hello", "ci_issuer",
                               "gateway", "prune", "connections"]
    assert names(tmp_path, "client") == ["ci_runner", "vpn_client", "failover_proxy", "buildx_builder"]
    hello = role_path.load(tmp_path)[5]
    assert hello.sentinel == "hello_seen" and hello.templates.path("hello.env.j2").parent.name == "templates"


def test_a_template_beside_the_inventory_overrides_a_roles_own(tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "buildkit-ops-prune.timer.j2").write_text("[Timer]\nOnCalendar={{ calendar }}\n")
    prune = [r for r in role_path.load(tmp_path) if r.name == "prune"][0]
    assert prune.templates.path("buildkit-ops-prune.timer.j2") == tmp_path.resolve() / "templates" / \
        "buildkit-ops-prune.timer.j2"
    assert prune.templates.render("buildkit-ops-prune.timer.j2", "systemd", calendar="Mon 03:00 %n") == \
        "[Timer]\nOnCalendar=Mon 03:00 %%n\n"       # still escaped for systemd


@pytest.mark.parametrize("folder,init,message", [
    ("buildkitd", "", "a built-in role is named 'buildkitd'"),
    ("Hello", "", "'Hello' is not a role name"),
    ("hello", None, "a role folder needs an __init__.py that sets ROLE"),
    ("hello", "ROLE = 1\n", "it sets no ROLE"),
    ("hello", "1/0\n", "the role cannot be loaded: ZeroDivisionError"),
    ("hello", "from buildkit_ops.engine.contract import Role\nclass R(Role):\n    name = 'other'\nROLE = R()\n",
     "ROLE.name is 'other' but its folder is 'hello'"),
    ("hello", "from buildkit_ops.engine.contract import Role\nclass R(Role):\n    name = 'hello'\n"
              "    after = 'nginx'\nROLE = R()\n", "after = 'nginx' is not a role of host targets"),
])
def test_a_role_that_cannot_be_used_is_refused_with_its_file(tmp_path, folder, init, message):
    d = tmp_path / "roles" / folder
    d.mkdir(parents=True)
    if init is not None:
        (d / "__init__.py").write_text(init)
    with pytest.raises(RoleError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        role_path.load(tmp_path)
    assert str(tmp_path) in str(e.value) and e.value.code == 2


def test_the_roles_beside_an_inventory_in_a_checkout_are_the_built_in_ones_whichever_copy_runs(tmp_path):
    """An installed bkops run against a checkout's inventory: its roles/ are not an operator's (they would clash
    with the built-in names); its templates/ is the operator's override folder, as anywhere."""
    (tmp_path / "buildkit_ops" / "engine").mkdir(parents=True)
    (tmp_path / "roles" / "buildkitd").mkdir(parents=True)
    (tmp_path / "templates").mkdir()
    assert role_path.site_folder(tmp_path, "roles") is None
    assert role_path.site_folder(tmp_path, "templates") == (tmp_path / "templates").resolve()
