"""The config doctor reads the GC rules buildkitd applies (as `buildctl debug workers -v` prints them) and says
what is wrong with them against the inventory and the version: drift, dead filters, a floor with no ceiling,
history off."""
from __future__ import annotations

import dataclasses

from conftest import ROOT

from buildkit_ops import inventory as I
from buildkit_ops.insights import config_doctor as doctor
from buildkit_ops.inventory import buildkit_versions as versions

# BuildKit's built-in default before v0.31, as v0.13 prints it: its first rule ANDs three record types
V013_DEFAULT = ("GC Policy rule#0:\n\tAll:\tfalse\n\tFilters:\ttype==source.local,type==exec.cachemount,"
                "type==source.git.checkout\n\tKeep Duration:\t48h0m0s\n\tKeep Bytes:\t512MB\n"
                "GC Policy rule#1:\n\tAll:\tfalse\n\tKeep Duration:\t1440h0m0s\n\tKeep Bytes:\t10GB\n"
                "GC Policy rule#2:\n\tAll:\ttrue\n\tKeep Bytes:\t10GB\n\n")


def host(**bk):
    h = I.load(ROOT / "inventory.yml").hosts["build1"]
    return dataclasses.replace(h, buildkit=dataclasses.replace(h.buildkit, **bk))


def printed(rule: I.GCPolicy) -> dict[str, str]:
    """An inventory rule as v0.13 prints it (whole gigabytes)."""
    out = {"all": "true" if rule.all else "false"}
    if rule.filters:
        out["filters"] = " ".join(rule.filters)
    if rule.keep_duration:
        out["keep_duration"] = f"{rule.keep_duration // 3600}h0m0s"
    if rule.max_used is not None:
        out["max_used"] = f"{rule.max_used / 1e9:g}GB"
    return out


def test_the_inventorys_own_rules_running_say_nothing():
    h = host()
    assert doctor.findings(h, "v0.13.2", [printed(p) for p in h.buildkit.gc.policies], 100 * 10**9) == []


def test_rules_other_than_the_inventorys_are_drift_with_the_fix():
    h = host()
    running = [printed(p) for p in h.buildkit.gc.policies]
    running[-1]["max_used"] = "99GB"
    said = doctor.findings(h, "v0.13.2", running, None)
    assert said == [f"buildkitd applies {len(running)} GC rule(s) other than the inventory's {len(running)}: its "
                    f"container runs an older config; run `invoke provision --host build1`"]
    assert doctor.findings(h, "v0.13.2", running[:-1], None)[0].startswith("buildkitd applies")


def test_the_pre_v0_31_default_rule_is_dead_and_said_so():
    h = host(gc=dataclasses.replace(host().buildkit.gc, policies=[]))
    said = doctor.findings(h, "v0.13.2", versions.reported_rules(V013_DEFAULT), None)
    assert said == ["GC rule #0 never matches: its filter type==source.local,type==exec.cachemount,"
                    "type==source.git.checkout asks for several record types at once (BuildKit's built-in default "
                    "rule before v0.31, #6856: set buildkit.gc.policies or upgrade); write each type as a filter of "
                    "its own"]
    fixed = V013_DEFAULT.replace("type==source.local,type==exec.cachemount,type==source.git.checkout",
                                 "type==source.local type==exec.cachemount type==source.git.checkout")
    assert doctor.findings(h, "v0.31.0", versions.reported_rules(fixed), None) == []


def test_a_floor_without_a_ceiling_on_v0_17_and_newer():
    h = host(version="v0.33.1", gc=dataclasses.replace(host().buildkit.gc, policies=[]))
    floor_only = "GC Policy rule#0:\n\tAll:\ttrue\n\tReserved Space:\t10GB\n\n"
    said = doctor.findings(h, "v0.33.1", versions.reported_rules(floor_only), 20 * 10**9)
    assert said == ["the GC keeps a floor (reserved space) but no rule sets a ceiling: the cache grows until the "
                    "disk (20 GB) is full; set buildkit.gc.max_used or min_free (keep_storage is only the floor "
                    "from v0.17)"]
    ceiling = floor_only.replace("\n\n", "\n\tMax Used Space:\t15GB\n\n")
    assert doctor.findings(h, "v0.33.1", versions.reported_rules(ceiling), 20 * 10**9) == []


def test_history_off_is_said_whatever_buildkitd_answers():
    h = host(history_max_entries=0)
    assert doctor.findings(h, "v0.33.1", [], None) == [
        "build history is off (buildkit.history_max_entries: 0): `status` and `builds` see no builds; set it "
        "above 0 to have them"]


def test_printed_values_are_read_back():
    assert doctor.printed_size("512MB") == 512e6 and doctor.printed_size("1.5GiB") == 1.5 * 2**30
    assert doctor.printed_size("9.766e+06B") == 9.766e6 and doctor.printed_size("lots") is None
    assert doctor.printed_duration("48h0m0s") == 172800 and doctor.printed_duration("1m30s") == 90
    assert doctor.printed_duration("soon") is None
    assert doctor.dead_filters("type==a type==b,type==c label!=x,type==d") == ["type==b,type==c"]
