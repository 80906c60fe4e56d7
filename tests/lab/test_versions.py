"""The config is written for the BuildKit version that runs: on the lab's v0.13.2 server, the GC policy that
buildkitd applies (`buildctl debug workers -v`) is exactly the inventory's, and a provision that says another
version is refused before any change."""
from __future__ import annotations

import pytest
from helpers import INV, inventory_variant, invoke, invoke_json

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


def test_the_config_doctor_judges_the_rules_buildkitd_applies(lab):
    """status reads the GC rules the running buildkitd applies: the inventory's say nothing; another inventory's
    are drift with the fix; BuildKit's own pre-v0.31 default (`policies: []` on v0.13.2) has a dead first rule."""
    assert invoke("provision", "--host", "build1").returncode == 0
    rc, doc, err = invoke_json("status", "--host", "build1")
    assert doc["hosts"]["build1"]["buildkitd"]["config_doctor"] == [], err

    def other_rules(d):
        d["all"]["vars"]["buildkit"]["gc"]["policies"] = [{"all": True, "max_used": "3GB"}]
    rc, doc, err = invoke_json("status", "--host", "build1", "-i", inventory_variant("drift", other_rules))
    assert any(w.startswith("build1: buildkitd applies 4 GC rule(s) other than the inventory's 1: its container "
                            "runs an older config; run `invoke provision --host build1`") for w in doc["warnings"])

    def no_rules(d):   # (an empty list: BuildKit's built-in default applies)
        d["all"]["vars"]["buildkit"]["gc"]["policies"] = []
    builtin = inventory_variant("builtin-gc", no_rules)
    try:
        assert invoke("provision", "--host", "build1", "-i", builtin).returncode == 0
        rc, doc, err = invoke_json("status", "--host", "build1", "-i", builtin)
        said = doc["hosts"]["build1"]["buildkitd"]["config_doctor"]
        assert said and said[0].startswith("GC rule #0 never matches: its filter type==source.local,"
                                           "type==exec.cachemount,type==source.git.checkout asks for several record "
                                           "types at once (BuildKit's built-in default rule before v0.31, #6856"), said
        assert f"build1: {said[0]}" in doc["warnings"]
    finally:
        assert invoke("provision", "--host", "build1").returncode == 0
