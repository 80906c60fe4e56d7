"""The WireGuard tunnel's pieces on either end: the configuration is a serializer's (a hostile value cannot add a
line, the private key is never in it), the steps from nothing to a tunnel up (wireguard-go and a tun device only
where the kernel has no WireGuard; the key pair made on the machine), a running tunnel takes new peers in place
(the private key travels in a file, never a command's argument), and the facts never carry the private key."""
from __future__ import annotations

import pytest
from unit_helpers import HOSTILE, changed

from buildkit_ops.engine.render import File, FileState, RenderError
from buildkit_ops.roles.vpn.exports import conf, tunnel

KEY_A = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
KEY_B = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="


def test_the_configuration_names_each_peer_by_its_one_address_and_holds_no_private_key():
    text = conf.render("10.213.0.1", 24, tunnel.KEY, [conf.Peer("laptop", KEY_A, "10.213.0.3"),
                                                      conf.Peer("ci1", KEY_B, "10.213.0.4", "10.0.0.11:51820", 25)],
                       listen_port=51820).decode()
    assert text.splitlines()[1:] == [
        "[Interface]", "Address = 10.213.0.1/24", "ListenPort = 51820",
        "PostUp = wg set %i private-key /etc/wireguard/bkops-vpn.key",
        "", "# ci1", "[Peer]", f"PublicKey = {KEY_B}", "AllowedIPs = 10.213.0.4/32", "Endpoint = 10.0.0.11:51820",
        "PersistentKeepalive = 25",
        "", "# laptop", "[Peer]", f"PublicKey = {KEY_A}", "AllowedIPs = 10.213.0.3/32"]
    assert "PrivateKey" not in text


@pytest.mark.parametrize("field", ["name", "public_key", "address", "endpoint"])
@pytest.mark.parametrize("value", HOSTILE + ["10.0.0.5\nAllowedIPs = 0.0.0.0/0", f"{KEY_A}\n[Peer]"])
def test_a_hostile_value_never_becomes_a_line_of_the_configuration(field, value):
    peer = {"name": "laptop", "public_key": KEY_A, "address": "10.213.0.3", "endpoint": "10.0.0.11:51820"}
    peer[field] = value
    with pytest.raises(RenderError):
        conf.render("10.213.0.1", 24, tunnel.KEY, [conf.Peer(**peer)])


def facts(**kw):
    sections = {"vpn_tools": "wg\nwg-quick", "vpn_kernel": "yes", "vpn_tun": "yes", "vpn_public": KEY_A,
                "vpn_active": "active", "vpn_in_force": KEY_A, "vpn_now": "1000",
                "vpn_peers": f"{KEY_B}\t(none)\t10.0.0.21:4242\t10.213.0.3/32\t990\t100\t200\t0\n"}
    sections.update(kw)
    return tunnel.parse(sections)


CONF = File(tunnel.CONF, b"[Interface]\n", 0o600)


def test_a_converged_tunnel_plans_nothing_and_reads_its_peers():
    f = facts()
    assert changed(tunnel.steps("vpn", f, CONF, {tunnel.CONF: _state(CONF)})) == []
    assert [(p.public_key, p.endpoint, p.handshake, p.received, p.sent) for p in f.peers] == [
        (KEY_B, "10.0.0.21:4242", 990, 100, 200)]
    assert f.live(KEY_B) and not f.live(KEY_A)


def _state(f: File) -> FileState:
    return FileState(f.sha256, f"{f.mode:o}", "root:root")


def test_a_machine_without_the_module_gets_wireguard_go_and_a_tun_device_and_a_key_made_there():
    f = facts(vpn_tools="", vpn_kernel="", vpn_tun="", vpn_public="", vpn_active="inactive", vpn_in_force="")
    steps = [s for s in tunnel.steps("vpn", f, CONF, {}) if s.changed]
    assert [s.name for s in steps] == ["WireGuard", "tun device", "key pair", tunnel.CONF, tunnel.IFACE]
    assert steps[0].packages == ["wireguard-tools", "wireguard-go"]
    assert "mknod -m 0600 /dev/net/tun c 10 200" in steps[1].script
    assert "wg genkey > /etc/wireguard/bkops-vpn.key.tmp" in steps[2].script and "umask 077" in steps[2].script
    with_module = [s.name for s in tunnel.steps("vpn", facts(vpn_tools="", vpn_active="inactive"), CONF, {})
                   if s.changed]
    assert with_module == ["WireGuard", tunnel.CONF, tunnel.IFACE]                   # the kernel's: no tun, no go


def test_a_running_tunnel_takes_a_new_configuration_in_place_and_an_interface_without_its_key_gets_it_back():
    steps = [s for s in tunnel.steps("vpn", facts(), CONF, {}) if s.changed]
    assert [(s.name, s.notify) for s in steps] == [(tunnel.CONF, [tunnel.SYNC])]
    script = tunnel.Sync().script(None)
    assert "wg syncconf bkops-vpn" in script and "systemctl restart" not in script
    assert "cat /etc/wireguard/bkops-vpn.key; } > \"$K\"" in script and "umask 077" in script   # a file, no argument
    lost = [s for s in tunnel.steps("vpn", facts(vpn_in_force=""), CONF, {tunnel.CONF: _state(CONF)}) if s.changed]
    assert [(s.name, s.script) for s in lost] == [(tunnel.IFACE, "wg set bkops-vpn private-key "
                                                                 "/etc/wireguard/bkops-vpn.key\n")]


def test_the_facts_never_hold_the_private_key():
    script = (tunnel.__file__.rsplit("/", 1)[0] + "/facts.sh")
    text = open(script).read()
    assert "dump 2>/dev/null | tail -n +2" in text          # the interface's line (its private key) left out
    assert "private-key" not in text and "cat \"$BKOPS_VPN_KEY\"" not in text


def test_a_client_brings_a_tunnel_without_a_recent_handshake_up_and_leaves_a_live_one():
    f = facts()
    steps = tunnel.reach_steps("vpn_client", f, [("build1", KEY_B, "10.213.0.1"), ("build2", KEY_A, "10.213.0.2")])
    assert [(s.name, s.changed) for s in steps] == [("tunnel to build1", False), ("tunnel to build2", True)]
    assert "ping -c1 -W1 10.213.0.2" in steps[1].script


def test_a_machine_without_a_vpn_loses_its_tunnel_and_one_that_never_had_one_is_left_alone():
    gone = tunnel.remove_steps("vpn", facts())
    assert gone[0].changed and "systemctl disable -q --now wg-quick@bkops-vpn" in gone[0].script
    assert "rm -f /etc/wireguard/bkops-vpn.conf /etc/wireguard/bkops-vpn.key" in gone[0].script
    assert not tunnel.remove_steps("vpn", facts(vpn_public="", vpn_active="inactive"))[0].changed


def test_a_key_pair_made_anew_is_in_force_at_once_and_its_new_public_key_read_back():
    [step] = [s for s in tunnel.steps("vpn", facts(), CONF, {tunnel.CONF: _state(CONF)}, renew=True) if s.changed]
    assert step.name == "key pair" and step.notify == [tunnel.SYNC]
    assert step.script == ("umask 077\nwg genkey > /etc/wireguard/bkops-vpn.key.tmp && mv /etc/wireguard/bkops-vpn.key"
                           ".tmp /etc/wireguard/bkops-vpn.key\nwg set bkops-vpn private-key /etc/wireguard/bkops-vpn.key\n")
    assert "@@vpn_public" in tunnel.Sync().script(None)           # the handler reads the new public key back
