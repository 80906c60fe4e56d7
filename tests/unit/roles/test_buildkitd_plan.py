"""buildkitd's plan and input per daemon, step by step and field by field: what each daemon is planned from (its
image, pin, wait, the tenants the default instance keeps an eye on), and the fence put back without a restart."""
from __future__ import annotations

import dataclasses

from unit_helpers import load_text, mutate

from buildkit_ops.engine.contract import Options
from buildkit_ops.inventory.daemons import daemons, fleet
from buildkit_ops.roles import buildkitd
from buildkit_ops.roles.buildkitd.facts import BuildkitdFacts

PIN = "sha256:" + "b" * 64


def by_tag(d):
    """The lab's inventory with the image pulled by tag (no archive), a tenant, and images.lock beside it."""
    d["all"]["vars"]["tenants"] = {"red": {}}
    for h in d["all"]["children"]["buildhosts"]["hosts"].values():
        h.setdefault("buildkit", {}).update(image="moby/buildkit:v0.13.2", image_archive=None)


def test_each_daemon_is_planned_from_its_own_input(tmp_path):
    inv = load_text(tmp_path, mutate(by_tag))
    h = inv.hosts["build1"]
    (inv.file.parent / "images.lock").write_text(f"moby/buildkit:v0.13.2: {PIN}\n")
    options = Options(wait=17, force=True, remove=frozenset({"old"}))
    main, red = daemons(inv, h)
    i = buildkitd.prepare(inv, h, options, main)
    assert (i.daemon, i.image_id, i.wait, i.force, i.clients, i.pin) == (main, None, 17, True, len(inv.clients), PIN)
    assert (i.lock, i.own_image, i.wanted, i.remove) == (inv.file.parent / "images.lock", True, frozenset({"red"}),
                                                         frozenset({"old"}))
    t = buildkitd.prepare(inv, h, options, red)
    # a tenant's daemon runs the fleet's image (the default instance brings and pins it) and watches no other
    assert (t.daemon, t.wait, t.force, t.pin, t.lock, t.own_image, t.wanted) == (red, 17, True, PIN, None, False,
                                                                                frozenset())
    assert buildkitd.prepare(inv, h, Options(), None).daemon == fleet(h)


def test_a_missing_fence_rule_is_put_back_and_nothing_is_planned_where_no_fence_belongs(tmp_path):
    inv = load_text(tmp_path, mutate(lambda d: None))
    d = fleet(inv.hosts["build1"])
    missing = BuildkitdFacts(fence_missing=["iptables -t raw A", "iptables -t raw B"])
    [step] = buildkitd.fence_steps(d, missing, restarting=False)
    assert (step.role, step.name, step.changed, step.detail, step.script, step.notify) == (
        "buildkitd", "build-step fence", True, "2 rule(s) missing: put back (iptables -t raw A)",
        "sh /opt/buildkit-ops/fence.sh apply\n", [])
    [ok] = buildkitd.fence_steps(d, BuildkitdFacts(), restarting=False)
    assert (ok.role, ok.name, ok.changed, ok.detail) == ("buildkitd", "build-step fence", False, "in place")
    assert buildkitd.fence_steps(d, missing, restarting=True) == []          # (a restart applies it anyway)
    host_network = dataclasses.replace(d, buildkit=dataclasses.replace(d.buildkit, step_network="host"))
    assert buildkitd.fence_steps(host_network, missing, restarting=False) == []


def test_a_tenants_daemon_brings_no_image_of_its_own(tmp_path):
    inv = load_text(tmp_path, mutate(by_tag))
    h = inv.hosts["build1"]
    _, red = daemons(inv, h)
    assert buildkitd.image_step(red, BuildkitdFacts(), buildkitd.prepare(inv, h, Options(), red)) is None
    pull = buildkitd.image_step(fleet(h), BuildkitdFacts(), buildkitd.prepare(inv, h, Options(), fleet(h)))
    assert pull is not None and (pull.role, pull.name, pull.changed, pull.notify) == (
        "buildkitd", "image moby/buildkit:v0.13.2", True, ["recreate buildkitd"])
