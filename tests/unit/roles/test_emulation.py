"""The emulation role: qemu-user-static installed and registered with the F flag, buildkitd restarted to see it."""
from __future__ import annotations

import pytest
from conftest import ROOT
from unit_helpers import DEBIAN_12, UBUNTU_2204, UBUNTU_2404, scripts

from buildkit_ops import inventory as I
from buildkit_ops.roles import emulation

INV = I.load(ROOT / "inventory.yml")


BUILD2 = INV.hosts["build2"]   # (emulate: [linux/arm64])


@pytest.mark.parametrize("facts", [UBUNTU_2204, UBUNTU_2404, DEBIAN_12])
def test_emulation_installs_qemu_user_static_and_registers_with_the_f_flag(facts):
    steps = emulation.plan(BUILD2, emulation.parse(facts))
    text = scripts(steps)
    assert steps[0].packages == ["qemu-user-static"]
    assert "/usr/lib/binfmt.d/qemu-aarch64.conf" in text and "update-binfmts --enable qemu-aarch64" in text
    assert "without the F flag" in text
    # registered meanwhile by something else on the kernel ("File exists"): judged by its F flag, not a failure
    assert "/register || [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]" in text
