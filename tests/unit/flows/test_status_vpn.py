"""status's view of a host's tunnel: each peer named by the client whose key it is, its handshake's age and
bytes; a peer that is no client of the inventory, a client without a peer and a tunnel down are said."""
from __future__ import annotations

import datetime as dt

import yaml
from unit_helpers import GOOD, load_text

from buildkit_ops.flows import status_vpn
from buildkit_ops.flows.status_tree import HostStatus, Status
from buildkit_ops.pki import vpn_keys
from buildkit_ops.roles.vpn.exports import tunnel

LAPTOP = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
STRANGER = "xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="
NOW = dt.datetime.fromtimestamp(2000, dt.timezone.utc)


def inventory(tmp_path):
    data = yaml.safe_load(GOOD)
    data["all"]["vars"].update(vpn={"kind": "wireguard"}, pki_dir=str(tmp_path / "pki"))
    data["all"]["children"]["clients"]["hosts"]["ci1"] = {"address": "10.0.0.31"}
    inv = load_text(tmp_path, yaml.safe_dump(data))
    vpn_keys.record(inv.pki_dir, "clients", "laptop", LAPTOP)
    return inv


def judged(inv, active="active", peers=""):
    facts = tunnel.parse({"vpn_active": active, "vpn_port": "51820", "vpn_peers": peers})
    hs = HostStatus(True, [], vpn=status_vpn.read(inv, inv.hosts["build1"], facts, NOW))
    st = Status()
    status_vpn.judge(inv.hosts["build1"], hs, st)
    return hs, st


def test_peers_are_named_by_their_keys_and_a_stranger_and_a_client_without_a_peer_are_said(tmp_path):
    inv = inventory(tmp_path)
    hs, st = judged(inv, peers=f"{LAPTOP}\t(none)\t10.0.0.21:4242\t10.213.0.3/32\t1990\t100\t200\t25\n"
                              f"{STRANGER}\t(none)\t(none)\t10.213.0.9/32\t0\t0\t0\toff\n")
    assert [(p.client, p.endpoint, p.handshake_age, p.received) for p in hs.vpn.peers] == [
        ("laptop", "10.0.0.21:4242", 10, 100), (None, None, None, 0)]
    assert hs.vpn.address == "10.213.0.1" and hs.vpn.without_peer == ["ci1"]
    assert st.warnings == [
        f"build1: the tunnel has a peer that is no client of the inventory (public key {STRANGER}): run `invoke "
        f"provision --host build1` to take it away",
        "build1: client(s) ci1 have no peer in the tunnel: run `invoke add-client NAME` for each"]
    assert st.failures == []


def test_a_tunnel_down_fails_and_without_a_vpn_there_is_nothing_to_say(tmp_path):
    inv = inventory(tmp_path)
    _, st = judged(inv, active="inactive")
    assert st.failures == ["build1: the VPN's tunnel is down: no client can build there; run `invoke provision "
                           "--host build1`"]
    plain = load_text(tmp_path, GOOD)
    assert status_vpn.read(plain, plain.hosts["build1"], tunnel.TunnelFacts(), NOW) is None
