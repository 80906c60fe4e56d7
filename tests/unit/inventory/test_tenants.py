"""Tenants in the inventory: each tenant's hosts and its BuildKit settings on each (the host's, with the tenant's
merged in key by key), a stable step subnet slot each, clients placed among their tenant's hosts only; and every
wrong value refused at load with the key's path (the battery's cases for tenants)."""
from __future__ import annotations

import pytest
from unit_helpers import client_values as client
from unit_helpers import load_text, mutate, refusal
from unit_helpers import top_values as top

from buildkit_ops.fleet import placement

BAD = [
    ("tenant named like the fleet's own daemon", client(tenant="default"),
     "inv.yml: all.children.clients.hosts.laptop.tenant: 'default' is the name of the fleet's own buildkitd (clients of no tenant)\n  fix: give the tenant another name"),
    ("a client of a tenant nobody declared", client(tenant="red"),
     "inv.yml: all.children.clients.hosts.laptop.tenant: 'red' is not a tenant\n  fix: use one of: (none yet: add it under all.vars.tenants)"),
    ("a tenant named with a newline", top(tenants={"red\nx": {}}),
     "inv.yml: all.vars.tenants.red\\nx: 'red\\nx' is not a tenant name\n  fix: use 1 to 20 lower-case letters, digits and dashes, starting with a letter, e.g. red"),
    ("a tenant on a host that is not one", top(tenants={"red": {"hosts": ["build9"]}}),
     "inv.yml: all.vars.tenants.red.hosts[0]: 'build9' is not a build host\n  fix: use one of: build1"),
    ("a tenant setting the host's image", top(tenants={"red": {"buildkit": {"image": "evil/buildkit:1"}}}),
     "inv.yml: all.vars.tenants.red.buildkit.image: a tenant cannot set 'image': it is the host's (one image, port and gateway per host)\n  fix: set it on the host; a tenant may set: max_parallelism, step_network, gc, history_max_age, history_max_entries, prune_schedule"),
    ("a tenant's parallelism out of range", top(tenants={"red": {"buildkit": {"max_parallelism": 0}}}),
     "inv.yml: all.vars.tenants.red.buildkit.max_parallelism: must be a whole number from 1 to 1024, got 0\n  fix: write a number from 1 to 1024, without quotes"),
    ("a tenant's steps on the host's network", top(tenants={"red": {"buildkit": {"step_network": "host"}}}),
     "inv.yml: all.vars.tenants.red.buildkit.step_network: is host on build1 (a tenant's or its host's value): the tenant's build steps would run in build1's own network, where no fence applies, and reach the other tenants' steps and the host itself\n  fix: use sandboxed (the default)"),
    ("the fleet's steps on the network of a host with tenants",
     lambda d: (top(tenants={"red": {"buildkit": {"step_network": "sandboxed"}}})(d),
                d["all"]["children"]["buildhosts"]["hosts"]["build1"].update({"buildkit": {"step_network": "host"}})),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.step_network: is host on build1, which runs the buildkitd of tenant red too: the fleet's build steps would run in build1's own network, where no fence applies, and reach the tenants' steps\n  fix: use sandboxed (the default)"),
    ("a debug listener on a host with tenants",
     lambda d: (top(tenants={"red": {}})(d),
                d["all"]["children"]["buildhosts"]["hosts"]["build1"].update(
                    {"buildkit": {"debug_address": "127.0.0.1:6060"}})),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.debug_address: is set on build1, which runs tenant red's buildkitd too: every daemon would take the same address, and the tenants' daemons would not start\n  fix: leave debug_address out on hosts with tenants"),
    ("two tenants recorded on one subnet", top(tenants={"red": {"step_slot": 7}, "blue": {"step_slot": 7}}),
     "inv.yml: all.vars.tenants.red.step_slot: 7 is also tenant blue's: two tenants on one subnet would share a bridge\n  fix: give it a free slot, or remove the key to have one chosen and recorded"),
    ("a step slot past the subnets", top(tenants={"red": {"step_slot": 256}}),
     "inv.yml: all.vars.tenants.red.step_slot: must be a whole number from 0 to 255, got 256\n  fix: write a number from 0 to 255, without quotes"),
    ("a tenant's placement that is none", top(tenants={"red": {"placement": "nearest"}}),
     "inv.yml: all.vars.tenants.red.placement: 'nearest' is not allowed\n  fix: use one of: home, spill, least-busy"),
    ("a client named like the operator's certificate", lambda d: d["all"]["children"]["clients"]["hosts"].update(
        {"buildkit-ops-operator": {"address": "10.0.0.9"}}),
     "inv.yml: all.children.clients.hosts.buildkit-ops-operator: 'buildkit-ops-operator' is the name of the operator's own certificate: a client of that name would get the operator's role and its routing\n  fix: give the client another name"),
]


def test_a_recorded_slot_is_never_moved_by_a_new_tenant_whatever_its_name(tmp_path):
    """`aa` and `ir` are the names the review found: `aa` sorts first and its name's slot is ir's (211), so
    unrecorded, adding aa moved ir. Recorded, ir keeps its slot and aa takes the next free one; with both
    recorded, either order of adding gives each the same subnet."""
    ir_alone = load_text(tmp_path, mutate(top(tenants={"ir": {}}))).tenants["ir"].slot
    aa_alone = load_text(tmp_path, mutate(top(tenants={"aa": {}}))).tenants["aa"].slot
    assert aa_alone == ir_alone      # the clash that made the review's case (a positive control of the probe)
    inv = load_text(tmp_path, mutate(top(tenants={"ir": {"step_slot": ir_alone}, "aa": {}})))
    assert inv.tenants["ir"].slot == ir_alone and inv.tenants["aa"].slot != ir_alone
    assert inv.tenants["ir"].slot_recorded and not inv.tenants["aa"].slot_recorded
    unrecorded = load_text(tmp_path, mutate(top(tenants={"ir": {}, "aa": {}})))
    assert unrecorded.tenants["ir"].slot != ir_alone   # what recording prevents


@pytest.mark.parametrize("what,edit,message", BAD, ids=[b[0] for b in BAD])
def test_a_wrong_tenant_is_refused_at_load_with_an_exact_message(tmp_path, what, edit, message):
    assert refusal(tmp_path, edit) == message


TENANTS = {"red": {"hosts": ["build1"], "buildkit": {"max_parallelism": 2, "gc": {"keep_storage": "3GB"}}},
           "blue": {}}


def two_hosts_two_tenants(d):
    d["all"]["vars"]["tenants"] = TENANTS
    d["all"]["vars"]["buildkit"] = {"gc": {"min_free": "10%"}, "history_max_entries": 100}
    d["all"]["children"]["buildhosts"]["hosts"]["build2"] = {"address": "10.0.0.12"}
    d["all"]["children"]["clients"]["hosts"]["laptop"]["tenant"] = "red"
    d["all"]["children"]["clients"]["hosts"]["laptop2"] = {"address": "10.0.0.22", "tenant": "blue"}


def test_a_tenant_runs_on_its_hosts_with_the_hosts_settings_and_its_own_merged_in(tmp_path):
    inv = load_text(tmp_path, mutate(two_hosts_two_tenants))
    red, blue = inv.tenants["red"], inv.tenants["blue"]
    assert red.hosts == ["build1"] and blue.hosts == ["build1", "build2"]
    bk = red.buildkit["build1"]
    assert bk.max_parallelism == 2 and bk.gc.keep_storage == 3 * 10**9
    assert bk.gc.min_free == "10%" and bk.history_max_entries == 100     # (the host's, key by key)
    assert blue.buildkit["build2"] == inv.hosts["build2"].buildkit        # nothing of its own: the host's
    assert [t.name for t in inv.tenants_on("build2")] == ["blue"]
    assert red.slot != blue.slot and 0 <= red.slot < 256


def test_a_slot_comes_from_the_name_so_a_new_tenant_moves_no_other(tmp_path):
    before = load_text(tmp_path, mutate(two_hosts_two_tenants)).tenants
    def more(d):
        two_hosts_two_tenants(d)
        d["all"]["vars"]["tenants"] = {**TENANTS, "green": {}, "amber": {}}
    after = load_text(tmp_path, mutate(more)).tenants
    assert {n: t.slot for n, t in before.items()} == {n: after[n].slot for n in before}
    assert len({t.slot for t in after.values()}) == 4


def test_a_client_is_placed_among_its_tenants_hosts_only(tmp_path):
    inv = load_text(tmp_path, mutate(two_hosts_two_tenants))
    assert [h.name for h in inv.hosts_for(inv.clients["laptop"])] == ["build1"]
    assert placement.client_homes(inv)["laptop"] == "build1"
    assert {h.name for h in inv.hosts_for(inv.clients["laptop2"])} == {"build1", "build2"}


def test_a_tenants_placement_is_its_clients_that_do_not_say_their_own(tmp_path):
    def edit(d, own=None, for_all=None):
        two_hosts_two_tenants(d)
        d["all"]["vars"]["tenants"] = {**TENANTS, "red": {**TENANTS["red"], "placement": "spill"}}
        if own:
            d["all"]["children"]["clients"]["hosts"]["laptop"]["placement"] = own
        if for_all:
            d["all"]["children"]["clients"]["vars"] = {"placement": for_all}
    inv = load_text(tmp_path, mutate(edit))
    assert inv.tenants["red"].placement == "spill" and inv.tenants["blue"].placement is None
    assert (inv.clients["laptop"].placement, inv.clients["laptop2"].placement) == ("spill", "home")
    assert load_text(tmp_path, mutate(lambda d: edit(d, own="least-busy"))).clients["laptop"].placement == "least-busy"
    assert load_text(tmp_path, mutate(lambda d: edit(d, for_all="home"))).clients["laptop"].placement == "home"


def test_a_home_outside_the_tenants_hosts_is_refused(tmp_path):
    def edit(d):
        two_hosts_two_tenants(d)
        d["all"]["children"]["clients"]["hosts"]["laptop"]["home"] = "build2"
    assert refusal(tmp_path, edit) == ("inv.yml: all.children.clients.hosts.laptop.home: 'build2' is not a build "
                                       "host of tenant red\n  fix: use one of: build1")


def test_without_tenants_every_client_is_the_fleets_on_every_host(tmp_path):
    inv = load_text(tmp_path, mutate(lambda d: None))
    assert inv.tenants == {} and inv.clients["laptop"].tenant is None
    assert [h.name for h in inv.hosts_for(inv.clients["laptop"])] == ["build1"]
