"""The firewall role: ufw over IPv4 and IPv6, SSH allowed first, the BuildKit port open only to the inventory's
clients, rules of others that open the port refused (or pruned), commands made of single words."""
from __future__ import annotations

import pytest
from unit_helpers import DEBIAN_12, HOSTILE, UBUNTU_2204, UBUNTU_2404, changed

from buildkit_ops.engine.contract import Outcome
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.roles import firewall
from buildkit_ops.roles.firewall import client_set

ACTIVE = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), deny (routed)"


SSH = "ufw allow 22/tcp comment 'buildkit-ops ssh'"


LAPTOP = "ufw allow from 10.0.0.21 to any port 1234 proto tcp comment 'buildkit-ops client laptop'"


OLD = "ufw allow from 10.0.0.9 to any port 1234 proto tcp comment 'buildkit-ops client old'"


MINE = "ufw allow 80/tcp comment 'web'"


HOOK = "/etc/buildkit-ops/firewall/ufw-after.sh"
MEMBERS = "/etc/buildkit-ops/firewall/clients"
LOAD = f"{HOOK} start\n"
SET_RULES = "ufw-before-input buildkit-ops-clients:1234:any\nufw6-before-input buildkit-ops-clients:1234:any"


def host(status=ACTIVE, rules=(SSH, MINE), members=None, kernel=None, set_rules=SET_RULES, hooked=True, **more):
    """A host's firewall facts: ufw's, and the clients' set (members: name -> address, as written; kernel: its
    addresses as loaded, by default the members')."""
    members = members or {}
    return firewall.parse({"ufw_present": "yes", "ipset_present": "yes", "ufw_status": status,
                           "ufw_rules": "\n".join(rules), "fw_members": "\n".join(f"{n} {a}" for n, a in members.items()),
                           "fw_set": "\n".join(members.values() if kernel is None else kernel),
                           "fw_set_rules": set_rules if "active" in status else "",
                           "fw_hooked": "yes" if hooked else "no", **more})


def states(clients, port=1234, dest="any", kept=()):
    """The files' states of a host whose hook and members file are what the plan writes."""
    members = [client_set.Member(n, a) for n, a in {**clients, **dict(kept)}.items()]
    files = [File(HOOK, client_set.hook_script(port, dest).encode(), 0o700),
             File(MEMBERS, client_set.members_text(members).encode(), 0o600)]
    return {f.path: FileState(f.sha256, f"{f.mode:o}", "root:root") for f in files}


def plan(facts, clients, drop=False, dest="any", files=None, **kw):
    return firewall.plan(facts, 22, 1234, clients, drop, dest, states=states(clients) if files is None else files,
                         **kw)


def member_lines(steps):
    f = next(s.file for s in steps if s.file is not None and s.file.path == MEMBERS)
    return [line for line in f.content.decode().splitlines() if not line.startswith("#")]


def test_a_fresh_host_allows_ssh_then_writes_and_loads_the_clients_set_then_enables_ufw():
    steps = firewall.plan(host("Status: inactive", [], set_rules="", hooked=False), 22, 1234, {"laptop": "10.0.0.21"})
    names = [s.name for s in steps if s.changed]
    assert names == ["ssh 22/tcp allowed", HOOK, MEMBERS, "ufw runs the clients' hook",
                     "port 1234/tcp open to: laptop", "ufw active, inbound denied by default"]
    assert member_lines(steps) == ["laptop 10.0.0.21"]
    assert next(s for s in steps if s.outcome is Outcome.FIREWALL).script == LOAD
    assert steps[-1].script == "ufw default deny incoming\nufw default allow outgoing\nufw --force enable\n"


def test_zero_clients_still_allow_ssh_first_and_an_empty_set():
    steps = firewall.plan(host("Status: inactive", [], set_rules=""), 22, 1234, {})
    assert [s.name for s in steps if s.changed][0] == "ssh 22/tcp allowed"
    assert member_lines(steps) == []


def test_a_converged_host_changes_nothing():
    assert changed(plan(host(members={"laptop": "10.0.0.21"}), {"laptop": "10.0.0.21"})) == []


def test_a_client_that_left_the_inventory_stays_in_the_set_until_dropped():
    facts = host(members={"laptop": "10.0.0.21", "old": "10.0.0.9"})
    steps = plan(facts, {"laptop": "10.0.0.21"}, files=states({"laptop": "10.0.0.21"}, kept=[("old", "10.0.0.9")]))
    assert changed(steps) == []
    kept = [s for s in steps if s.name.startswith("rule for old")]
    assert kept and not kept[0].changed and "invoke remove-client old" in kept[0].detail
    steps = plan(facts, {"laptop": "10.0.0.21"}, drop=frozenset({"old"}),
                 files=states({"laptop": "10.0.0.21"}, kept=[("old", "10.0.0.9")]))
    assert member_lines(steps) == ["laptop 10.0.0.21"]
    assert changed(steps)[-1] == ("port 1234/tcp open to: laptop", "-old (10.0.0.9)")


def test_a_client_at_a_new_address_replaces_its_old_one():
    steps = plan(host(members={"laptop": "10.0.0.21"}), {"laptop": "10.0.0.22"}, files=states({"laptop": "10.0.0.21"}))
    assert member_lines(steps) == ["laptop 10.0.0.22"]
    step = next(s for s in steps if s.outcome is Outcome.FIREWALL)
    assert (step.detail, step.script) == ("+laptop (10.0.0.22), -laptop (10.0.0.21)", LOAD)


def test_the_set_is_loaded_again_when_the_kernel_lost_it_or_our_rule():
    clients = {"laptop": "10.0.0.21"}
    for facts in (host(members=clients, kernel=[]), host(members=clients, set_rules=SET_RULES.splitlines()[0])):
        step = next(s for s in plan(facts, clients) if s.outcome is Outcome.FIREWALL)
        assert step.changed and step.script == LOAD


def test_a_teams_clients_cost_one_load_not_a_command_each():
    clients = {f"dev{i}": f"10.1.{i // 250}.{i % 250 + 1}" for i in range(230)}
    steps = firewall.plan(host(members={}), 22, 1234, clients)
    script = "".join(s.script for s in steps if s.changed)
    assert script.count(LOAD) == 1 and "ufw allow" not in script
    assert len(member_lines(steps)) == 230


def test_per_client_ufw_rules_of_before_the_set_move_into_it_then_go():
    facts = host(rules=[SSH, LAPTOP, OLD, MINE], members={}, set_rules="", hooked=False)
    steps = firewall.plan(facts, 22, 1234, {"laptop": "10.0.0.21"})
    assert member_lines(steps) == ["laptop 10.0.0.21", "old 10.0.0.9"]     # (old: kept, as its rule was)
    step = next(s for s in steps if s.outcome is Outcome.FIREWALL)
    assert step.script == (LOAD + "ufw delete allow from 10.0.0.21 to any port 1234 proto tcp\n"
                                  "ufw delete allow from 10.0.0.9 to any port 1234 proto tcp\n")
    assert "2 ufw rule(s) moved into the set" in step.detail


def test_ufw_and_ipset_come_from_packages_when_missing():
    steps = firewall.plan(firewall.parse(DEBIAN_12), 22, 1234, {})
    assert steps[0].name == "ufw and ipset installed" and steps[0].packages == ["ufw", "ipset"]
    steps = firewall.plan(host(rules=[], ipset_present="no"), 22, 1234, {})
    assert steps[0].name == "ipset installed" and steps[0].packages == ["ipset"]
    assert steps[2].script == f"{SSH}\n"


@pytest.mark.parametrize("rule,opens", [
    ("ufw allow 1234/tcp", True), ("ufw allow 1234", True), ("ufw allow 1000:2000/tcp", True),
    ("ufw allow 22,1234/tcp", True), ("ufw limit 1234/tcp", True), ("ufw allow in on eth0 to any port 1234", True),
    ("ufw allow from 10.0.0.0/8", True), ("ufw allow from 10.0.0.0/8 to any", True),
    ("ufw allow proto tcp from any to any port 1234", True), ("ufw allow 1234/tcp comment 'web'", True),
    ("ufw allow 1234/udp", False), ("ufw allow 80/tcp", False), ("ufw deny 1234/tcp", False),
    ("ufw allow out 1234/tcp", False), ("ufw allow OpenSSH", False), ("ufw allow from 10.0.0.0/8 port 53", True),
    ("ufw allow proto udp from any to any port 1234", False), ("ufw allow from 10.0.0.5 to any port 80", False),
])
def test_which_rules_open_the_buildkit_port(rule, opens):
    assert firewall.opens_port(rule, 1234) is opens


def test_a_rule_of_others_opening_the_port_fails_the_plan_unless_pruned():
    facts = host(rules=[SSH, MINE, "ufw allow 1234/tcp"], members={"laptop": "10.0.0.21"})
    with pytest.raises(firewall.FirewallConflict, match="ufw allow 1234/tcp"):
        plan(facts, {"laptop": "10.0.0.21"})
    steps = plan(facts, {"laptop": "10.0.0.21"}, drop=True)
    assert [s.script for s in steps if s.changed] == ["ufw delete allow 1234/tcp\n"]


def test_ipv6_filtering_is_switched_on_then_ssh_allowed_again():
    steps = plan(host(rules=[SSH], members={"laptop": "10.0.0.21"}, ufw_ipv6="no",
                      set_rules=SET_RULES.splitlines()[0]), {"laptop": "10.0.0.21"})
    assert changed(steps) == [("IPv6 filtered too", "IPV6=no -> yes")]
    script = steps[0].script
    assert script.index("IPV6=yes") < script.index("ufw reload") < script.index(f"{SSH}\n")


@pytest.mark.parametrize("facts", [UBUNTU_2204, UBUNTU_2404])
def test_ubuntus_own_ufw_is_used_and_enabled_after_ssh_is_allowed(facts):
    steps = firewall.plan(firewall.parse(facts), 22, 1234, {"laptop": "10.77.0.21"})
    names = [s.name for s in steps if s.changed]
    assert "ufw installed" not in names and "ufw and ipset installed" not in names
    assert names.index("ssh 22/tcp allowed") < names.index("ufw active, inbound denied by default")


@pytest.mark.parametrize("evil", HOSTILE)
def test_no_value_adds_a_member_or_a_word(evil):
    for clients in ({"laptop": evil}, {evil: "10.0.0.21"}):
        with pytest.raises(client_set.NotAClient):
            firewall.plan(host(), 22, 1234, clients)
    text = "laptop 10.0.0.21\n" + f"evil {evil}\n" + f"{evil} 10.0.0.9\n"
    assert client_set.parse_members(text) == {client_set.Member("laptop", "10.0.0.21")}


@pytest.mark.parametrize("rule", [
    "ufw allow from 0.0.0.0/0 to any port 1234 proto tcp comment 'buildkit-ops client evil'",
    "ufw allow from 128.0.0.0/1 to any port 1234 proto tcp comment 'buildkit-ops client evil'",
    "ufw allow from 10.0.0.99 to any port 1234 proto tcp comment 'buildkit-ops client Evil'",
    "ufw allow from 10.0.0.099 to any port 1234 proto tcp comment 'buildkit-ops client evil'",
])
def test_a_rule_is_ours_only_if_it_is_exactly_one_we_would_write(rule):
    facts = firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, LAPTOP, rule])})
    assert list(facts.client_rules()) == [("10.0.0.21", "any", 1234, "laptop")]
    assert firewall.foreign_openings(facts, 1234) == [rule]
    with pytest.raises(firewall.FirewallConflict, match="not made by buildkit-ops open port 1234/tcp"):
        firewall.plan(facts, 22, 1234, {"laptop": "10.0.0.21"})
    pruned = firewall.plan(facts, 22, 1234, {"laptop": "10.0.0.21"}, drop=True)
    assert [s.detail for s in pruned if s.name.startswith("rules of others")] == [f"deleted: {rule}"]


def test_private_mode_lets_the_set_in_on_the_private_address_only():
    hook = client_set.hook_script(1234, "10.0.0.11")
    puts = [line.split() for line in hook.splitlines() if line.startswith("  put ")]
    assert puts == [["put", "iptables", "ufw-before-input", "-p", "tcp", "--dport", "1234", "-d", "10.0.0.11", "-m",
                     "set", "--match-set", "bkops-clients4", "src", "-m", "comment", "--comment",
                     "buildkit-ops-clients:1234:10.0.0.11", "-j", "ACCEPT"], ["put", "ip6tables", "ufw6-before-input"]]
    clients = {"laptop": "10.0.0.21"}
    facts = host(members=clients)
    # (from any address to the private one: the hook changes, the set is loaded again: the hook swaps the rules)
    steps = plan(facts, clients, dest="10.0.0.11", files=states(clients))
    assert [n for n, _ in changed(steps)] == [HOOK, "port 1234/tcp open to: laptop"]
    private = host(members=clients, set_rules="ufw-before-input buildkit-ops-clients:1234:10.0.0.11")
    assert changed(plan(private, clients, dest="10.0.0.11", files=states(clients, dest="10.0.0.11"))) == []
    # a ufw rule to a public destination is not one we would write: someone else's, opening the port
    public = LAPTOP.replace("to any", "to 198.51.100.7")
    assert firewall.parse({"ufw_rules": public}).client_rules() == {}


def test_with_a_vpn_the_port_opens_on_the_tunnel_only_and_the_clients_leave_the_set():
    tunnel = firewall.Tunnel("bkops-vpn", 51820)
    facts = host(members={"laptop": "10.0.0.21"})
    steps = plan(facts, {}, frozenset({"laptop"}), tunnel=tunnel, files=states({"laptop": "10.0.0.21"}))
    assert member_lines(steps) == []
    assert [s.script for s in steps if s.changed][-2:] == [
        LOAD, "ufw allow in on bkops-vpn to any port 1234 proto tcp comment 'buildkit-ops vpn'\n"
              "ufw allow 51820/udp comment 'buildkit-ops vpn'\n"]
    assert next(s for s in steps if s.outcome is Outcome.FIREWALL).name.startswith("port 1234/tcp open inside")
    vpn_rules = ["ufw allow in on bkops-vpn to any port 1234 proto tcp comment 'buildkit-ops vpn'",
                 "ufw allow 51820/udp comment 'buildkit-ops vpn'"]
    converged = host(rules=[SSH, *vpn_rules])
    assert changed(plan(converged, {}, tunnel=tunnel)) == []
    # allow_from narrows the UDP port; the VPN switched off takes its rules away (they open the port no more)
    narrow = firewall.Tunnel("bkops-vpn", 51820, ("198.51.100.0/24",))
    assert [s.script for s in plan(converged, {}, tunnel=narrow) if s.changed] == [
        "ufw allow from 198.51.100.0/24 to any port 51820 proto udp comment 'buildkit-ops vpn'\n"
        "ufw delete allow 51820/udp\n"]
    off = [s.script for s in plan(converged, {"laptop": "10.0.0.21"}) if s.changed]
    assert off == [LOAD, "ufw delete allow in on bkops-vpn to any port 1234 proto tcp\nufw delete allow 51820/udp\n"]


def test_the_addresses_let_in_are_the_sets_once_our_rule_for_the_port_lets_it_in():
    clients = {"laptop": "10.0.0.21", "ci": "10.0.1.0/29", "v6": "fd00::21"}
    assert host(members=clients).let_in(1234) == set(clients.values())
    assert host(members=clients).let_in(1235) == set()
    assert host(members=clients, set_rules="").let_in(1234) == set()                  # (loaded, but no rule)
    assert host(rules=[SSH, LAPTOP], members={}).let_in(1234) == {"10.0.0.21"}        # (a rule of before the set)
