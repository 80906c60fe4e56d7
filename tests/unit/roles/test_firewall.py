"""The firewall role: ufw over IPv4 and IPv6, SSH allowed first, the BuildKit port open only to the inventory's
clients, rules of others that open the port refused (or pruned), commands made of single words."""
from __future__ import annotations

import shlex

import pytest
from unit_helpers import DEBIAN_12, HOSTILE, UBUNTU_2204, UBUNTU_2404, changed

from buildkit_ops.engine.contract import Outcome
from buildkit_ops.roles import firewall

ACTIVE = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), deny (routed)"


SSH = "ufw allow 22/tcp comment 'buildkit-ops ssh'"


LAPTOP = "ufw allow from 10.0.0.21 to any port 1234 proto tcp comment 'buildkit-ops client laptop'"


OLD = "ufw allow from 10.0.0.9 to any port 1234 proto tcp comment 'buildkit-ops client old'"


MINE = "ufw allow 80/tcp comment 'web'"


def fw(status, rules, clients):
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": status, "ufw_rules": "\n".join(rules)}), 22, 1234,
                          clients)
    return [s.script for s in steps]


@pytest.mark.parametrize("status,rules,clients,scripts", [
    # fresh host: SSH first, then the clients, then enable
    ("Status: inactive", [], {"laptop": "10.0.0.21"},
     ["", f"{SSH}\n", f"{LAPTOP}\n", "ufw default deny incoming\nufw default allow outgoing\nufw --force enable\n"]),
    # zero clients: SSH still allowed before enabling
    ("Status: inactive", [], {},
     ["", f"{SSH}\n", "", "ufw default deny incoming\nufw default allow outgoing\nufw --force enable\n"]),
    # converged: nothing
    (ACTIVE, [SSH, LAPTOP, MINE], {"laptop": "10.0.0.21"}, ["", "", "", ""]),
    # a client left the inventory: its rule is kept (and reported) unless dropping is asked for
    (ACTIVE, [SSH, LAPTOP, OLD, MINE], {"laptop": "10.0.0.21"}, ["", "", "", "", ""]),
    (ACTIVE, [SSH, LAPTOP, OLD, MINE], {"laptop": "10.0.0.21", "drop": {"old"}},
     ["", "", "ufw delete allow from 10.0.0.9 to any port 1234 proto tcp\n", ""]),
    # a client moved, with --prune-clients: new rule in, old out; the operator's own rule always stays
    (ACTIVE, [SSH, LAPTOP, MINE], {"laptop": "10.0.0.22", "drop": True},
     ["", "", "ufw allow from 10.0.0.22 to any port 1234 proto tcp comment 'buildkit-ops client laptop'\n"
          "ufw delete allow from 10.0.0.21 to any port 1234 proto tcp\n", ""]),
])
def test_firewall_plan(status, rules, clients, scripts):
    clients = dict(clients)
    drop = clients.pop("drop", False)
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": status, "ufw_rules": "\n".join(rules)}), 22, 1234,
                          clients, drop)
    assert [s.script for s in steps] == scripts


def test_firewall_reports_a_kept_rule_of_an_unknown_client():
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, OLD])}), 22,
                          1234, {})
    kept = [s for s in steps if s.name.startswith("rule for old")]
    assert kept and not kept[0].changed and "invoke remove-client old" in kept[0].detail


def test_firewall_installs_ufw_when_missing_and_still_allows_ssh_first():
    steps = firewall.plan(firewall.parse({"ufw_present": "no"}), 2222, 1234, {})
    assert steps[0].packages == ["ufw"] and not steps[0].script
    assert steps[2].script == "ufw allow 2222/tcp comment 'buildkit-ops ssh'\n"
    assert steps[-1].script.endswith("ufw --force enable\n")


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
    facts = {"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, LAPTOP, MINE,
                                                                                 "ufw allow 1234/tcp"])}
    with pytest.raises(firewall.FirewallConflict, match="ufw allow 1234/tcp"):
        firewall.plan(firewall.parse(facts), 22, 1234, {"laptop": "10.0.0.21"})
    steps = firewall.plan(firewall.parse(facts), 22, 1234, {"laptop": "10.0.0.21"}, drop=True)
    assert [s.script for s in steps if s.changed] == ["ufw delete allow 1234/tcp\n"]


def test_ipv6_filtering_is_switched_on_then_ssh_allowed_again():
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, LAPTOP]),
                           "ufw_ipv6": "no"}), 22, 1234, {"laptop": "10.0.0.21"})
    assert changed(steps) == [("IPv6 filtered too", "IPV6=no -> yes")]
    script = steps[0].script
    assert script.index("IPV6=yes") < script.index("ufw reload") < script.index(f"{SSH}\n")


@pytest.mark.parametrize("facts", [UBUNTU_2204, UBUNTU_2404])
def test_ubuntus_own_ufw_is_used_and_enabled_after_ssh_is_allowed(facts):
    steps = firewall.plan(firewall.parse(facts), 22, 1234, {"laptop": "10.77.0.21"})
    names = [s.name for s in steps if s.changed]
    assert "ufw installed" not in names
    assert names.index("ssh 22/tcp allowed") < names.index("ufw active, inbound denied by default")


def test_debian_gets_ufw_from_its_packages():
    steps = firewall.plan(firewall.parse(DEBIAN_12), 22, 1234, {})
    assert steps[0].name == "ufw installed" and steps[0].packages == ["ufw"]


@pytest.mark.parametrize("evil", HOSTILE[2:])
def test_firewall_commands_are_single_words(evil):
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": "", "ufw_rules": "", "ufw_ipv6": "yes"}), 22, 1234,
                          {"laptop": evil})
    script = next(s.script for s in steps if s.outcome is Outcome.FIREWALL)
    assert shlex.split(script) == ["ufw", *firewall.client_rule(evil, 1234, "laptop")]


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


def test_private_mode_opens_the_port_on_the_private_address_only_and_replaces_the_rules_for_any():
    private = "ufw allow from 10.0.0.21 to 10.0.0.11 port 1234 proto tcp comment 'buildkit-ops client laptop'"
    facts = firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, LAPTOP, OLD])})
    steps = firewall.plan(facts, 22, 1234, {"laptop": "10.0.0.21"}, dest="10.0.0.11")
    step = next(s for s in steps if s.outcome is Outcome.FIREWALL)
    # laptop's rule for any address goes (laptop is still a client: its rule moved); old's is kept (not dropped)
    assert step.script == (f"{private}\nufw delete allow from 10.0.0.21 to any port 1234 proto tcp\n")
    assert [s.name for s in steps if s.name.startswith("rule for")] == ["rule for old (10.0.0.9) kept"]
    converged = firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, private])})
    assert changed(firewall.plan(converged, 22, 1234, {"laptop": "10.0.0.21"}, dest="10.0.0.11")) == []
    # a rule to a public destination is not one we would write: someone else's, opening the port
    public = private.replace("to 10.0.0.11", "to 198.51.100.7")
    assert firewall.parse({"ufw_rules": public}).client_rules() == {}


def test_with_a_vpn_the_port_opens_on_the_tunnel_only_and_the_clients_own_rules_go():
    tunnel = firewall.Tunnel("bkops-vpn", 51820)
    facts = firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, LAPTOP])})
    steps = firewall.plan(facts, 22, 1234, {}, frozenset({"laptop"}), tunnel=tunnel)
    scripts = [s.script for s in steps if s.changed]
    assert scripts == ["ufw delete allow from 10.0.0.21 to any port 1234 proto tcp\n",
                       "ufw allow in on bkops-vpn to any port 1234 proto tcp comment 'buildkit-ops vpn'\n"
                       "ufw allow 51820/udp comment 'buildkit-ops vpn'\n"]
    assert next(s for s in steps if s.outcome is Outcome.FIREWALL).name.startswith("port 1234/tcp open inside")
    vpn_rules = ["ufw allow in on bkops-vpn to any port 1234 proto tcp comment 'buildkit-ops vpn'",
                 "ufw allow 51820/udp comment 'buildkit-ops vpn'"]
    converged = firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, *vpn_rules])})
    assert changed(firewall.plan(converged, 22, 1234, {}, tunnel=tunnel)) == []
    # allow_from narrows the UDP port; the VPN switched off takes its rules away (they open the port no more)
    narrow = firewall.Tunnel("bkops-vpn", 51820, ("198.51.100.0/24",))
    assert [s.script for s in firewall.plan(converged, 22, 1234, {}, tunnel=narrow) if s.changed] == [
        "ufw allow from 198.51.100.0/24 to any port 51820 proto udp comment 'buildkit-ops vpn'\n"
        "ufw delete allow 51820/udp\n"]
    off = [s.script for s in firewall.plan(converged, 22, 1234, {"laptop": "10.0.0.21"}) if s.changed]
    assert off == [f"{LAPTOP}\n", "ufw delete allow in on bkops-vpn to any port 1234 proto tcp\n"
                                  "ufw delete allow 51820/udp\n"]
