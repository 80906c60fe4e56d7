"""add-client / remove-client edit inventory.yml as text: comments survive, the result is validated."""
from __future__ import annotations

import pytest
from conftest import ROOT

from buildkit_ops import inventory
from buildkit_ops.inventory import edit as inventory_edit


@pytest.fixture
def inv_file(tmp_path):
    f = tmp_path / "inventory.yml"
    f.write_text((ROOT / "inventory.yml").read_text())
    return f


def test_add_client_keeps_every_comment_and_validates(inv_file):
    before = inv_file.read_text()
    inventory_edit.add_client(inv_file, "ci-runner", {"address": "10.77.0.40", "ssh_user": "ci"})
    after = inv_file.read_text()
    comments = [l for l in before.splitlines() if l.strip().startswith("#")]
    assert comments == [l for l in after.splitlines() if l.strip().startswith("#")]
    inv = inventory.load(inv_file)
    assert inv.clients["ci-runner"].address == "10.77.0.40" and inv.clients["ci-runner"].ssh_user == "ci"
    assert inv.clients["laptop"].address == "10.77.0.21"
    assert "        ci-runner:\n          address: 10.77.0.40\n          ssh_user: ci\n" in after


def test_remove_client_takes_out_only_its_lines(inv_file):
    original = inv_file.read_text()
    inventory_edit.add_client(inv_file, "ci-runner", {"address": "10.77.0.40"})
    inventory_edit.remove_client(inv_file, "ci-runner")
    assert inv_file.read_text() == original
    inventory_edit.remove_client(inv_file, "laptop")
    assert "laptop" not in inventory.load(inv_file).clients
    assert "address: 10.77.0.21" not in inv_file.read_text()


def test_add_client_to_an_empty_clients_group(tmp_path):
    f = tmp_path / "inv.yml"
    f.write_text("all:\n  children:\n    buildhosts:\n      hosts:\n        b1:\n          address: 10.0.0.1\n"
                 "    clients:\n      hosts: {}\n")
    inventory_edit.add_client(f, "dev", {"address": "10.0.0.9", "connection": "local"})
    assert inventory.load(f).clients["dev"].connection == "local"


def test_an_invalid_result_leaves_the_file_untouched(inv_file):
    before = inv_file.read_text()
    with pytest.raises(inventory_edit.EditError, match="would not be valid"):
        inventory_edit.add_client(inv_file, "dup", {"address": "10.77.0.21"})  # laptop's address
    assert inv_file.read_text() == before


def test_dry_edit_writes_nothing(inv_file):
    before = inv_file.read_text()
    inv = inventory_edit.add_client(inv_file, "x1", {"address": "10.77.0.41"}, write=False)
    assert "x1" in inv.clients and inv_file.read_text() == before


def test_on_the_documented_inventory_only_the_clients_own_lines_change(inv_file):
    import difflib
    original = inv_file.read_text()

    def changed_lines() -> list[str]:
        return [d for d in difflib.unified_diff(original.splitlines(), inv_file.read_text().splitlines(), lineterm="",
                                                n=0) if d[:1] in "+-" and not d.startswith(("+++", "---"))]
    inventory_edit.add_client(inv_file, "ci-runner", {"address": "10.77.0.40", "connection": "none"})
    assert changed_lines() == ["+        ci-runner:", "+          address: 10.77.0.40", "+          connection: none"]
    inventory_edit.set_client_value(inv_file, "laptop", "home", "build2")
    inventory_edit.set_client_value(inv_file, "laptop", "address", "10.77.0.29")
    assert changed_lines() == ["-          address: 10.77.0.21", "+          address: 10.77.0.29",
                               "+          home: build2",
                               "+        ci-runner:", "+          address: 10.77.0.40", "+          connection: none"]


def test_a_value_cannot_add_a_key_of_its_own(inv_file):
    before = inv_file.read_text()
    with pytest.raises(inventory_edit.EditError, match="would not be valid"):
        inventory_edit.add_client(inv_file, "evil", {"address": "10.77.0.50\n          role: admin"})
    assert inv_file.read_text() == before


def test_tenant_slots_are_recorded_with_a_comment_and_then_never_move(inv_file):
    text = inv_file.read_text().replace("\n  vars:\n", "\n  vars:\n    tenants:\n      ir: {}\n", 1)
    inv_file.write_text(text)
    slot = inventory.load(inv_file).tenants["ir"].slot
    inventory_edit.record_tenant_slots(inv_file, {"ir": slot})
    assert f"step_slot: {slot}  # 10.11.{slot}.0/24, recorded by buildkit-ops: never change it" in inv_file.read_text()
    inv_file.write_text(inv_file.read_text().replace("    tenants:\n", "    tenants:\n      aa: {}\n", 1))
    after = inventory.load(inv_file)
    assert after.tenants["ir"].slot == slot and after.tenants["aa"].slot != slot   # aa's name wants ir's slot


def test_remove_tenant_takes_out_its_lines_and_the_key_with_the_last_one(inv_file):
    text = inv_file.read_text().replace("\n  vars:\n", "\n  vars:\n    tenants:\n      red: {}\n      blue:\n"
                                        "        hosts: [build1]\n", 1)
    inv_file.write_text(text)
    dry = inventory_edit.remove_tenant(inv_file, "red", write=False)
    assert set(dry.tenants) == {"blue"} and inv_file.read_text() == text          # (a dry edit writes nothing)
    inventory_edit.remove_tenant(inv_file, "red")
    assert set(inventory.load(inv_file).tenants) == {"blue"} and "      red: {}\n" not in inv_file.read_text()
    inventory_edit.remove_tenant(inv_file, "blue")
    assert "\n    tenants:\n" not in inv_file.read_text() and inventory.load(inv_file).tenants == {}
    assert inv_file.read_text() == (ROOT / "inventory.yml").read_text()          # every other line as it was
    with pytest.raises(inventory_edit.EditError, match="tenant blue not found under all.vars.tenants"):
        inventory_edit.remove_tenant(inv_file, "blue")


def test_an_edit_shown_first_is_made_from_the_text_already_checked_unless_the_file_changed(inv_file, monkeypatch):
    loads = []
    real = inventory_edit._load
    monkeypatch.setattr(inventory_edit, "_load", lambda path, text: loads.append(path) or real(path, text))
    shown = inventory_edit.add_client(inv_file, "ci-runner", {"address": "10.77.0.40"}, write=False)
    assert "ci-runner" in shown.clients and "ci-runner" not in inv_file.read_text()
    inventory_edit.add_client(inv_file, "ci-runner", {"address": "10.77.0.40"})
    assert len(loads) == 1 and "ci-runner:" in inv_file.read_text()    # one round trip for both
    # the file changed between the two (an operator's edit): the edit is made again, from the file as it is now
    inventory_edit.add_client(inv_file, "ci2", {"address": "10.77.0.41"}, write=False)
    inv_file.write_text(inv_file.read_text() + "# an operator's note\n")
    inventory_edit.add_client(inv_file, "ci2", {"address": "10.77.0.41"})
    assert len(loads) == 3 and "# an operator's note\n" in inv_file.read_text()
    assert "ci2" in inventory.load(inv_file).clients
