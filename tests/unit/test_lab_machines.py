"""The lab's machine list: two build hosts by default, up to eight for the fleet benchmark."""
from __future__ import annotations

import pytest

from lab.machines import Lab, LabError, default_machines


def test_two_build_hosts_by_default_and_up_to_eight():
    assert [m.name for m in default_machines()] == ["registry", "build1", "build2", "laptop", "laptop2", "intruder"]
    eight = [m.name for m in default_machines(8) if m.role == "droplet"]
    assert eight == [f"build{i}" for i in range(1, 9)]
    assert [Lab().address(n) for n in ("build1", "build8")] == ["10.77.0.11", "10.77.0.18"]
    with pytest.raises(LabError, match="1 to 8"):
        default_machines(9)
