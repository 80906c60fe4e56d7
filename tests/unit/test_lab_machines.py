"""The lab's machine list: two build hosts by default, up to eight for the fleet benchmark."""
from __future__ import annotations

import pytest
import yaml
from conftest import ROOT

from lab.machines import Lab, LabError, default_machines


def test_two_build_hosts_by_default_and_up_to_eight():
    assert [m.name for m in default_machines()] == ["registry", "build1", "build2", "laptop", "laptop2", "intruder"]
    eight = [m.name for m in default_machines(8) if m.role == "droplet"]
    assert eight == [f"build{i}" for i in range(1, 9)]
    assert [Lab().address(n) for n in ("build1", "build8")] == ["10.77.0.11", "10.77.0.18"]
    with pytest.raises(LabError, match="1 to 8"):
        default_machines(9)


def test_the_second_lab_has_its_own_network_machines_state_and_pki_in_the_inventory_it_gets():
    """The suite runs its lab modules on three labs at once (tests/suite.py): another's inventory is
    inventory.yml with every address, state path and the PKI moved to its own, and nothing of the first's left."""
    first, second = Lab.for_slot(""), Lab.for_slot("b")
    assert (first.subnet, first.container("build1"), first.state.name) == ("10.77.0", "bkops-build1", ".lab")
    assert (second.address("build1"), second.container("build1"), second.state.name) == (
        "10.79.0.11", "bkopsb-build1", ".lab-b")
    assert second.bridge != first.bridge and second.network != first.network and second.subnet6 != first.subnet6
    tracked = (ROOT / "inventory.yml").read_text()
    assert first.translate(tracked) == tracked
    moved = yaml.safe_load(second.translate(tracked))
    text = yaml.safe_dump(moved)
    assert "10.77.0." not in text and ".lab/" not in text and "10.79.0.5:5000" in text
    assert moved["all"]["vars"]["pki_dir"] == ".pki-b" and moved["all"]["vars"]["known_hosts"] == ".lab-b/known_hosts"
    assert moved["all"]["children"]["buildhosts"]["hosts"]["build2"]["address"] == "10.79.0.12"
    third = Lab.for_slot("c")
    assert len({first.subnet, second.subnet, third.subnet, "10.78.0"}) == 4 and third.container("laptop") == \
        "bkopsc-laptop"
    with pytest.raises(LabError, match="no lab slot 'd'"):
        Lab.for_slot("d")
