"""The inventory's YAML: a key given twice and any alias are refused with their line, before anything else."""
from __future__ import annotations

import pytest
from unit_helpers import GOOD

from buildkit_ops import inventory as I


def refused(tmp_path, text: str) -> str:
    f = tmp_path / "inv.yml"
    f.write_text(text)
    with pytest.raises(I.InventoryError) as e:
        I.load(f)
    return str(e.value).replace(str(tmp_path) + "/", "")


def test_a_key_given_twice_is_refused_with_its_line(tmp_path):
    text = GOOD.replace("    ssh_key: id\n", "    ssh_key: id\n    buildkit:\n      step_network: sandboxed\n"
                                                "      step_network: host\n")
    assert refused(tmp_path, text) == (
        "inv.yml: line 7, column 7: the key 'step_network' is given twice in the same mapping\n"
        "  fix: give each key once, and write values out in full (no &anchors or *aliases)")


def test_an_alias_is_refused_with_its_line_and_a_nested_bomb_never_expands(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
        f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(9))
    message = refused(tmp_path, bomb + GOOD)
    assert message.startswith("inv.yml: line 2, column 8: uses an alias (*a); aliases are not allowed")
    merge = GOOD.replace("  vars:\n", "  vars: &common\n").replace(
        "        laptop:\n", "        laptop:\n          <<: *common\n")
    assert "uses an alias (*common)" in refused(tmp_path, merge)


def test_the_shipped_inventory_has_neither(tmp_path):
    from conftest import ROOT
    assert I.load(ROOT / "inventory.yml").hosts
