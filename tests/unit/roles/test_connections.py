"""The connections role: conntrack and logrotate installed only where missing, its service kept running."""
from __future__ import annotations

import pytest
from conftest import ROOT
from unit_helpers import DEBIAN_12, UBUNTU_2204, UBUNTU_2404, scripts

from buildkit_ops import inventory as I
from buildkit_ops.roles import connections

BUILD2 = I.load(ROOT / "inventory.yml").hosts["build2"]


@pytest.mark.parametrize("facts,missing", [(UBUNTU_2204, "conntrack"), (UBUNTU_2404, "conntrack"),
                                           (DEBIAN_12, "conntrack logrotate")])
def test_the_connection_log_installs_only_what_the_release_lacks(facts, missing):
    steps = connections.plan(connections.parse(facts), connections.render(BUILD2), {})
    assert steps[0].detail == f"install {missing}"
    assert "systemctl enable -q buildkit-ops-connections.service" in scripts(steps)
