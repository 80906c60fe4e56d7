"""The VPN's and private mode's values: each hostile one refused at load with its key and why (a network that
collides with the inventory or Docker, a port out of range, a key written in the inventory, an address outside
the tunnel's network or wider than one machine's); every machine gets a tunnel address of its own, hosts first,
and one written down is never moved by adding or removing another machine."""
from __future__ import annotations

import pytest
import yaml
from unit_helpers import GOOD, load_text, refusal

from buildkit_ops.inventory import values


def host(**kw):
    return lambda d: d["all"]["children"]["buildhosts"]["hosts"]["build1"].update(kw)


def vpn(**kw):
    return lambda d: d["all"]["vars"].update(vpn={"kind": "wireguard", **kw})


def vpn_client(**kw):
    def edit(d):
        d["all"]["vars"]["vpn"] = {"kind": "wireguard"}
        d["all"]["children"]["clients"]["hosts"]["laptop"].update(kw)
    return edit


BAD = [
    ("VPN network overlapping a client", vpn(subnet="10.0.0.0/24"),
     "inv.yml: all.vars.vpn.subnet: 10.0.0.0/24 holds 10.0.0.11, build host build1's address: the tunnel would take its traffic\n  fix: pick a network no host or client address is in"),
    ("VPN network overlapping Docker's bridge", vpn(subnet="172.17.4.0/24"),
     "inv.yml: all.vars.vpn.subnet: 172.17.4.0/24 overlaps 172.17.0.0/16 (Docker's default bridge)\n  fix: pick another private network, e.g. 10.213.0.0/24"),
    ("VPN port out of range", vpn(port=70000),
     "inv.yml: all.vars.vpn.port: must be a whole number from 1 to 65535, got 70000\n  fix: write a number from 1 to 65535, without quotes"),
    ("a key in the inventory", vpn(private_key="yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="),
     "inv.yml: all.vars.vpn.private_key: a key is never an inventory value: each machine makes its own key pair and keeps the private key (buildkit-ops keeps the public keys in pki_dir/vpn/)\n  fix: remove `private_key:`"),
    ("VPN address outside the VPN", vpn_client(vpn_address="10.214.0.7"),
     "inv.yml: all.children.clients.hosts.laptop.vpn_address: 10.214.0.7 is not an address of the VPN's network 10.213.0.0/24 (nor its network or broadcast address)\n  fix: leave the key out: buildkit-ops chooses one and writes it here"),
    ("VPN network that is public", vpn(subnet="198.51.100.0/24"),
     "inv.yml: all.vars.vpn.subnet: '198.51.100.0/24' is not in a private range: the tunnel's addresses would be someone else's on the internet\n  fix: write a private network such as 10.213.0.0/24"),
    ("private address that is a name", host(private_address="build1.internal"),
     "inv.yml: all.children.buildhosts.hosts.build1.private_address: 'build1.internal' is not an IP address: the gateway listens on one address of the host\n  fix: write the host's address on its private network, such as 10.0.0.5, or leave the key out"),
    ("private address with a newline", host(private_address="10.0.0.5\nbind 0.0.0.0:1234"),
     "inv.yml: all.children.buildhosts.hosts.build1.private_address: '10.0.0.5\\nbind 0.0.0.0:1234' is not an IP address: the gateway listens on one address of the host\n  fix: write the host's address on its private network, such as 10.0.0.5, or leave the key out"),
]


@pytest.mark.parametrize("what,edit,message", BAD, ids=[b[0] for b in BAD])
def test_hostile_vpn_value_is_refused_at_load_with_an_exact_message(tmp_path, what, edit, message):
    got = refusal(tmp_path, edit)
    assert got == message
    assert "\n" not in got.split("\n  fix: ")[0]


def with_vpn(extra_hosts=(), extra_clients=(), written=None):
    data = yaml.safe_load(GOOD)
    data["all"]["vars"]["vpn"] = {"kind": "wireguard"}
    hosts = data["all"]["children"]["buildhosts"]["hosts"]
    clients = data["all"]["children"]["clients"]["hosts"]
    for i, name in enumerate(extra_hosts):
        hosts[name] = {"address": f"10.0.0.{12 + i}"}
    for i, name in enumerate(extra_clients):
        clients[name] = {"address": f"10.0.0.{31 + i}"}
    for name, address in (written or {}).items():
        (hosts.get(name) or clients[name])["vpn_address"] = address
    return yaml.safe_dump(data, sort_keys=False)


def test_each_machine_gets_an_address_hosts_first_and_a_written_one_never_moves(tmp_path):
    inv = load_text(tmp_path, with_vpn(["build2"], ["ci1"]))
    assert {n: m.vpn_address for n, m in {**inv.hosts, **inv.clients}.items()} == {
        "build1": "10.213.0.1", "build2": "10.213.0.2", "ci1": "10.213.0.3", "laptop": "10.213.0.4"}
    assert inv.vpn_unrecorded == {"build1": "10.213.0.1", "build2": "10.213.0.2", "ci1": "10.213.0.3",
                                  "laptop": "10.213.0.4"}
    # clients reach a host at its tunnel address (their builders' nodes, the certificates' names)
    assert inv.hosts["build1"].client_address == "10.213.0.1" and "10.213.0.1" in inv.hosts["build1"].sans
    # written down, then a host added before the others: nobody moves, the newcomer takes a free address
    written = {"build1": "10.213.0.1", "ci1": "10.213.0.3", "laptop": "10.213.0.4"}
    later = load_text(tmp_path, with_vpn(["build0"], ["ci1"], written))
    assert {n: m.vpn_address for n, m in {**later.hosts, **later.clients}.items()} == {
        "build1": "10.213.0.1", "build0": "10.213.0.2", "ci1": "10.213.0.3", "laptop": "10.213.0.4"}
    assert later.vpn_unrecorded == {"build0": "10.213.0.2"}


def test_two_machines_on_one_tunnel_address_and_a_client_address_with_a_vpn_are_refused(tmp_path):
    with pytest.raises(Exception, match=r"clients.hosts.laptop.vpn_address: 10.213.0.1 is already build1's"):
        load_text(tmp_path, with_vpn(written={"build1": "10.213.0.1", "laptop": "10.213.0.1"}))
    got = refusal(tmp_path, lambda d: (d["all"]["vars"].update(vpn={"kind": "wireguard"}),
                                       d["all"]["children"]["buildhosts"]["hosts"]["build1"].update(
                                           client_address="build1.example.com")))
    assert got.startswith("inv.yml: all.children.buildhosts.hosts.build1.client_address: clients reach a host "
                          "through the VPN, at its vpn_address")


def said(kind, value):
    with pytest.raises(values.BadValue) as e:
        kind(value)
    return e.value.problem, e.value.fix


SUBNET_FIX = "write a private network such as 10.213.0.0/24"
IP_FIX = "leave the key out (buildkit-ops chooses one and writes it here), or write one address such as 10.213.0.7"
PRIVATE_FIX = "write the host's address on its private network, such as 10.0.0.5, or leave the key out"


@pytest.mark.parametrize("value,ok", [("10.212.0.0/16", True), ("10.212.0.0/15", False), ("10.213.0.0/28", True),
                                      ("10.213.0.0/29", False), ("fd00:213::/64", True), ("fd00:213::/63", False),
                                      ("fd00:213::/124", True), ("fd00:213::/125", False)])
def test_the_tunnels_network_is_a_16_to_a_28_or_an_ipv6_64_to_124(value, ok):
    if ok:
        assert values.vpn_subnet(value) == value
    else:
        lo, hi = ("16", "28") if "." in value else ("64", "124")
        assert said(values.vpn_subnet, value) == (f"{value!r} is a /{value.split('/')[1]}: the tunnel's network is a "
                                                  f"/{lo} to a /{hi}", SUBNET_FIX)


def test_each_vpn_value_says_what_it_wanted_and_how_to_write_it():
    assert said(values.vpn_subnet, 24) == ("must be a private network, got 24", SUBNET_FIX)
    assert said(values.vpn_subnet, "10.213.0.1/24") == (
        "'10.213.0.1/24' is not a network in CIDR form (the network's own address, e.g. 10.213.0.0/24)", SUBNET_FIX)
    assert said(values.vpn_ip, 7) == ("must be an IP address, got 7", IP_FIX)
    assert said(values.vpn_ip, "10.213.0.0/31") == (
        "'10.213.0.0/31' is a network, wider than the machine's own tunnel address: its peer would be allowed to send "
        "as any address in it (WireGuard's allowed-ips)", IP_FIX)
    assert said(values.vpn_ip, "laptop/32") == ("'laptop' is not an IP address", IP_FIX)
    assert values.vpn_ip("10.213.0.7/32") == "10.213.0.7" and values.vpn_ip("FD00::7") == "fd00::7"
    assert said(values.private_ip, None) == ("must be a private IP address, got None", PRIVATE_FIX)
    assert values.private_ip("fd00::5") == "fd00::5" and values.private_ip("100.64.0.9") == "100.64.0.9"
    assert said(values.private_ip, "2001:db8::5")[0].startswith("'2001:db8::5' is a public address")


def test_a_client_in_the_tunnels_network_a_taken_address_and_a_full_network_are_refused_exactly(tmp_path):
    data = yaml.safe_load(with_vpn())
    data["all"]["vars"]["vpn"]["subnet"] = "10.0.1.0/24"
    data["all"]["children"]["clients"]["hosts"]["laptop"].update(address="10.0.1.0/25", ssh_address="10.0.0.21")
    got = refusal(tmp_path, lambda d: d.update(data))
    assert got == ("inv.yml: all.vars.vpn.subnet: 10.0.1.0/24 overlaps 10.0.1.0/25, client laptop's address: the "
                   "tunnel would take its traffic\n  fix: pick a network no host or client address is in")
    taken = refusal(tmp_path, lambda d: d.update(yaml.safe_load(with_vpn(written={"build1": "10.213.0.1",
                                                                                  "laptop": "10.213.0.1"}))))
    assert taken == ("inv.yml: all.children.clients.hosts.laptop.vpn_address: 10.213.0.1 is already build1's\n  fix: "
                     "leave the key out: buildkit-ops chooses one and writes it here")
    full = yaml.safe_load(with_vpn(extra_clients=[f"c{i}" for i in range(14)]))
    full["all"]["vars"]["vpn"]["subnet"] = "10.213.0.0/28"                           # 14 addresses, 16 machines
    got = refusal(tmp_path, lambda d: d.update(full))
    assert got.startswith("inv.yml: all.vars.vpn.subnet: 10.213.0.0/28 has no address left for ") and \
        got.endswith("\n  fix: pick a wider network")
