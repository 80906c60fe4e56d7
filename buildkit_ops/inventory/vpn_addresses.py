"""The VPN's addresses (all.vars.vpn): its network must collide with nothing of the inventory, and each build host
and client gets one address in it, kept for good once written (`vpn_address:`, which provision and add-client
write the first time, as tenants' step slots are): adding or removing a machine never moves another's."""
from __future__ import annotations

import ipaddress

from buildkit_ops.inventory.checker import Checker
from buildkit_ops.inventory.model import BuildHost, Client, Vpn

# What the tunnel's network may not overlap besides the inventory's own addresses: the build steps' bridges
# (inventory/daemons.py STEPS) and Docker's default bridge (the lab's and most hosts' containers).
RESERVED = {"10.10.0.0/15": "the build steps' networks", "172.17.0.0/16": "Docker's default bridge"}


def _networks(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(value, strict=False)
    except ValueError:
        return None   # (a DNS name: nothing to collide with)


def assign(chk: Checker, vpn: Vpn, hosts: dict[str, BuildHost], clients: dict[str, Client],
           host_paths: dict[str, str]) -> dict[str, str]:
    """Check the network and every written address; choose one for each machine without. Returns the machines
    given an address now (machine -> address), for provision and add-client to write down."""
    net = ipaddress.ip_network(vpn.subnet)
    where = "all.vars.vpn.subnet"
    for reserved, what in RESERVED.items():
        if net.overlaps(ipaddress.ip_network(reserved)):
            chk.err(where, f"{vpn.subnet} overlaps {reserved} ({what})", "pick another private network, e.g. "
                                                                           "10.213.0.0/24")
    for name, h in hosts.items():
        for key in ("address", "private_address", "client_address"):
            other = _networks(getattr(h, key) or "")
            if other is not None and other.version == net.version and net.overlaps(other) and \
                    getattr(h, key) != h.vpn_address:
                chk.err(where, f"{vpn.subnet} holds {getattr(h, key)}, build host {name}'s {key}: the tunnel would "
                               f"take its traffic", "pick a network no host or client address is in")
    for name, c in clients.items():
        other = _networks(c.address)
        if other is not None and other.version == net.version and net.overlaps(other):
            chk.err(where, f"{vpn.subnet} overlaps {c.address}, client {name}'s address: the tunnel would take its "
                           f"traffic", "pick a network no host or client address is in")
    usable = [a for a in net.hosts()]
    taken: dict[str, str] = {}
    machines: list[tuple[str, BuildHost | Client, str]] = [
        *((n, h, host_paths[n]) for n, h in hosts.items()),
        *((n, c, f"all.children.clients.hosts.{n}") for n, c in sorted(clients.items()))]
    for name, m, path in machines:
        if m.vpn_address is None:
            continue
        if ipaddress.ip_address(m.vpn_address) not in usable:
            chk.err(f"{path}.vpn_address", f"{m.vpn_address} is not an address of the VPN's network {vpn.subnet} "
                                           f"(nor its network or broadcast address)",
                    "leave the key out: buildkit-ops chooses one and writes it here")
        if m.vpn_address in taken:
            chk.err(f"{path}.vpn_address", f"{m.vpn_address} is already {taken[m.vpn_address]}'s",
                    "leave the key out: buildkit-ops chooses one and writes it here")
        taken[m.vpn_address] = name
    chosen: dict[str, str] = {}
    free = (str(a) for a in usable if str(a) not in taken)
    for name, m, _path in machines:
        if m.vpn_address is None:
            address = next(free, None)
            if address is None:
                chk.err(where, f"{vpn.subnet} has no address left for {name}", "pick a wider network")
            m.vpn_address = chosen[name] = address
    for h in hosts.values():   # (clients build through the tunnel: a host is reached at its tunnel address)
        h.client_address = h.vpn_address or h.client_address
    return chosen
