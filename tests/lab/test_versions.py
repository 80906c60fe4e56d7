"""The config is written for the BuildKit version that runs: on the lab's v0.13.2 server, the GC policy that
buildkitd applies (`buildctl debug workers -v`) is exactly the inventory's, and a provision that says another
version is refused before any change."""
from __future__ import annotations

import pytest
from helpers import INV, inventory_variant, invoke

from buildkit_ops import inventory as I
from buildkit_ops.inventory import buildkit_versions as versions

pytestmark = pytest.mark.lab

SOCK = "unix:///run/buildkit/buildkitd.sock"


def go_duration(seconds: int) -> str:
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m}m{s}s"


def expected(rule: I.GCPolicy) -> dict[str, str]:
    """An inventory rule as v0.13's `buildctl debug workers -v` prints it."""
    out = {"all": "true" if rule.all else "false"}
    if rule.filters:
        out["filters"] = " ".join(rule.filters)
    if rule.keep_duration:
        out["keep_duration"] = go_duration(rule.keep_duration)
    if rule.max_used is not None:
        out["max_used"] = f"{rule.max_used / 1e9:g}GB"   # go-units HumanSize of whole gigabytes
    return out


def test_the_running_server_applies_exactly_the_inventorys_gc_policy(lab):
    assert invoke("provision", "--host", "build1").returncode == 0
    inv = I.load(INV)
    bk = inv.hosts["build1"].buildkit
    assert versions.minor(bk.version) == 13
    r = lab.run("build1", f"docker exec buildkitd buildctl --addr {SOCK} debug workers -v", capture=True)
    assert r.returncode == 0, r.stderr
    assert versions.reported_rules(r.stdout) == [expected(p) for p in bk.gc.policies]


def test_a_provision_for_another_version_than_the_running_one_changes_nothing(lab):
    before = lab.run("build1", "docker inspect -f '{{.Id}} {{.State.StartedAt}}' buildkitd; "
                               "sha256sum /opt/buildkit-ops/buildkitd.toml", capture=True).stdout

    def say_v0_29(d):
        d["all"]["vars"]["buildkit"]["version"] = "v0.29.0"
    r = invoke("provision", "--host", "build1", "-i", inventory_variant("v029", say_v0_29))
    assert r.returncode == 1
    assert ("build1 runs BuildKit v0.13.2 from buildkit-ops/buildkit:v0.13.2, but the inventory says "
            "buildkit.version v0.29.0") in r.stderr and "nothing was changed" in r.stderr
    assert "Traceback" not in r.stderr
    after = lab.run("build1", "docker inspect -f '{{.Id}} {{.State.StartedAt}}' buildkitd; "
                              "sha256sum /opt/buildkit-ops/buildkitd.toml", capture=True).stdout
    assert after == before
