"""Every role's plan on the facts of fresh Ubuntu 22.04 and 24.04 servers (and Debian 12 beside them): the
package names each role installs exist there, nothing is assumed that only Debian has. The facts are what the
roles' facts.sh print on those releases' cloud images (written from their documented defaults: Ubuntu ships
ufw (inactive, IPV6=yes) and logrotate, not Docker, conntrack or qemu; Debian 12 ships none of them). The
lab itself is Debian, so these plans run for real only there."""
from __future__ import annotations

import pytest
from conftest import ROOT

from buildkit_ops import inventory as I
from buildkit_ops.roles import connections, emulation, engine, firewall

UBUNTU_2204 = {"os": "ubuntu 22.04 debian", "docker": "", "compose": "", "ufw_present": "yes",
               "ufw_status": "Status: inactive", "ufw_rules": "", "ufw_ipv6": "yes", "binfmt_mounted": "yes",
               "binfmt": "aarch64 absent", "qemu": "", "conn_tools": "logrotate", "conn_service": ""}
UBUNTU_2404 = {**UBUNTU_2204, "os": "ubuntu 24.04 debian"}
DEBIAN_12 = {**UBUNTU_2204, "os": "debian 12", "ufw_present": "no", "ufw_status": "", "ufw_ipv6": "",
             "conn_tools": ""}

INV = I.load(ROOT / "inventory.yml")
BUILD2 = INV.hosts["build2"]   # (emulate: [linux/arm64])


def scripts(steps) -> str:
    return "\n".join(s.script for s in steps if s.changed)


@pytest.mark.parametrize("facts,docker", [(UBUNTU_2204, "docker.io docker-compose-v2"),
                                          (UBUNTU_2404, "docker.io docker-compose-v2"),
                                          (DEBIAN_12, "docker.io docker-compose/trixie")])
def test_engine_installs_the_releases_own_docker_and_compose_v2(facts, docker):
    [step] = engine.plan(engine.parse(facts))
    assert f"apt-get install -y -qq --no-install-recommends {docker}\n" in step.script
    assert ("trixie" in step.script) is facts["os"].startswith("debian")   # the pin is Debian 12's only


@pytest.mark.parametrize("facts", [UBUNTU_2204, UBUNTU_2404])
def test_ubuntus_own_ufw_is_used_and_enabled_after_ssh_is_allowed(facts):
    steps = firewall.plan(firewall.parse(facts), 22, 1234, {"laptop": "10.77.0.21"})
    names = [s.name for s in steps if s.changed]
    assert "ufw installed" not in names
    assert names.index("ssh 22/tcp allowed") < names.index("ufw active, inbound denied by default")


def test_debian_gets_ufw_from_its_packages():
    steps = firewall.plan(firewall.parse(DEBIAN_12), 22, 1234, {})
    assert steps[0].name == "ufw installed" and "apt-get update -qq\napt-get install -y -qq ufw" in steps[0].script


@pytest.mark.parametrize("facts", [UBUNTU_2204, UBUNTU_2404, DEBIAN_12])
def test_emulation_installs_qemu_user_static_and_registers_with_the_f_flag(facts):
    steps = emulation.plan(BUILD2, emulation.parse(facts))
    text = scripts(steps)
    assert "apt-get install -y -qq --no-install-recommends qemu-user-static" in text
    assert "/usr/lib/binfmt.d/qemu-aarch64.conf" in text and "update-binfmts --enable qemu-aarch64" in text
    assert "without the F flag" in text


@pytest.mark.parametrize("facts,missing", [(UBUNTU_2204, "conntrack"), (UBUNTU_2404, "conntrack"),
                                           (DEBIAN_12, "conntrack logrotate")])
def test_the_connection_log_installs_only_what_the_release_lacks(facts, missing):
    steps = connections.plan(connections.parse(facts), connections.render(BUILD2), {})
    assert steps[0].detail == f"install {missing}"
    assert "systemctl enable -q buildkit-ops-connections.service" in scripts(steps)
