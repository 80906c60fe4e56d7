"""The engine role: Docker Engine and Compose v2 from the distribution's packages (Debian 12 from trixie, Ubuntu's
docker-compose-v2), refused on other systems that lack them. Facts in, steps out; no SSH."""
from __future__ import annotations

import pytest
from unit_helpers import DEBIAN_12, UBUNTU_2204, UBUNTU_2404

from buildkit_ops.engine import runner
from buildkit_ops.roles import engine


@pytest.mark.parametrize("facts,changed,packages", [
    ({"os": "debian 12", "docker": "20.10.24", "compose": "2.26.1"}, False, []),
    ({"os": "debian 12", "docker": "", "compose": ""}, True, ["docker.io", "docker-compose/trixie"]),
    ({"os": "debian 13", "docker": "", "compose": ""}, True, ["docker.io", "docker-compose"]),
    ({"os": "ubuntu 24.04 debian", "docker": "24.0", "compose": ""}, True, ["docker.io", "docker-compose-v2"]),
    ({"os": "linuxmint 21 ubuntu debian", "docker": "", "compose": ""}, True, ["docker.io", "docker-compose-v2"]),
])
def test_engine_plan(facts, changed, packages):
    [step] = engine.plan(engine.parse(facts))
    assert step.changed is changed and step.packages == packages
    if changed:   # (the packages are installed by the runner, with every role's, before this script)
        assert step.script == "systemctl enable --now docker\n"


@pytest.mark.parametrize("os_", ["fedora 40", "alpine 3.20", "unknown 0"])
def test_engine_refuses_unsupported_os_when_docker_is_missing(os_):
    with pytest.raises(engine.UnsupportedHost, match="is not Debian or Ubuntu"):
        engine.plan(engine.parse({"os": os_, "docker": "", "compose": ""}))


def test_engine_accepts_any_os_that_already_has_docker_and_compose():
    assert not engine.plan(engine.parse({"os": "fedora 40", "docker": "27.0", "compose": "2.29.0"}))[0].changed


@pytest.mark.parametrize("facts,docker", [(UBUNTU_2204, "docker.io docker-compose-v2"),
                                          (UBUNTU_2404, "docker.io docker-compose-v2"),
                                          (DEBIAN_12, "docker.io docker-compose/trixie")])
def test_engine_installs_the_releases_own_docker_and_compose_v2(facts, docker):
    [step] = engine.plan(engine.parse(facts))
    assert step.packages == docker.split()
    assert ("trixie" in step.apt_source) is facts["os"].startswith("debian")   # the pin is Debian 12's only
    script = runner.with_packages([step])[0].script
    assert f"set -- {docker}\n" in script
