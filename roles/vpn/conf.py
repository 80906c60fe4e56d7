"""A WireGuard configuration file (wg-quick's), made by a serializer: every value is checked against its own
grammar (an address, a base64 key, host:port, a machine name), so that no value can add a line or a key. The
private key is never in it: wg-quick gives the interface the key file the machine made (PostUp)."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from buildkit_ops.engine.render import RenderError
from buildkit_ops.inventory import Client, Inventory, values
from buildkit_ops.pki import vpn_keys
from buildkit_ops.pki.vpn_keys import is_key


@dataclass(frozen=True)
class Peer:
    name: str                    # the machine's inventory name (a comment: who the peer is)
    public_key: str
    address: str                 # its one address in the tunnel (allowed-ips: that address alone)
    endpoint: str | None = None  # host:port to send to (a client's peers, the build hosts); None: learned
    keepalive: int | None = None  # seconds (a client behind NAT keeps its mapping open)


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise RenderError(f"{text!r} cannot be written into a WireGuard configuration as an address") from None


def _endpoint(text: str) -> str:
    host, _, port = text.rpartition(":")
    try:
        values.host_address(host.strip("[]"))
    except values.BadValue:
        raise RenderError(f"{text!r} cannot be written into a WireGuard configuration as an endpoint") from None
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise RenderError(f"{text!r} cannot be written into a WireGuard configuration as an endpoint")
    return text


def _key(text: str) -> str:
    if not is_key(text):
        raise RenderError(f"{text[:60]!r} is not a WireGuard public key")
    return text


def render(address: str, prefix: int, key_file: str | None, peers: list[Peer], listen_port: int | None = None,
           private_key: str | None = None) -> bytes:
    """The interface (its tunnel address in the tunnel's network, its UDP port on a build host) and one section per
    peer, in name order. `private_key`: only for a machine the operator cannot reach (a CI runner's configuration,
    a secret of its own), whose file then holds the key instead of naming a key file (key_file None)."""
    if (key_file is None) == (private_key is None):
        raise RenderError("a WireGuard configuration names its key file or holds its key, one of the two")
    if (key_file is not None and not re.fullmatch(r"/[a-z0-9/._-]+", key_file)) or not 8 <= int(prefix) <= 128:
        raise RenderError(f"{key_file!r} / {prefix!r} cannot be written into a WireGuard configuration")
    lines = ["# written by buildkit-ops from inventory.yml: do not edit here (docs/vpn.md)", "[Interface]",
             f"Address = {_address(address)}/{int(prefix)}"]
    if listen_port is not None:
        lines.append(f"ListenPort = {int(listen_port)}")
    if private_key is not None:
        lines.append(f"PrivateKey = {_key(private_key)}")
    else:
        lines.append(f"PostUp = wg set %i private-key {key_file}")
    for p in sorted(peers, key=lambda p: p.name):
        if not re.fullmatch(values.NAME, p.name):
            raise RenderError(f"{p.name!r} cannot be written into a WireGuard configuration as a name")
        lines += ["", f"# {p.name}", "[Peer]", f"PublicKey = {_key(p.public_key)}",
                  f"AllowedIPs = {_address(p.address)}/{128 if ':' in p.address else 32}"]
        if p.endpoint:
            lines.append(f"Endpoint = {_endpoint(p.endpoint)}")
        if p.keepalive:
            lines.append(f"PersistentKeepalive = {int(p.keepalive)}")
    return ("\n".join(lines) + "\n").encode()


KEEPALIVE = 25   # seconds: a NAT mapping on the way stays open, and the hosts learn a client's new address at once


def endpoint(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def host_peers(inv: Inventory, client: Client) -> tuple[list[Peer], list[str]]:
    """A client's peers: the build hosts it may build on whose public key is known (and those whose is not yet)."""
    assert inv.vpn is not None
    peers, unknown = [], []
    for h in inv.hosts_for(client):
        key = vpn_keys.read(inv.pki_dir, "hosts", h.name)
        if key is None or h.vpn_address is None:
            unknown.append(h.name)
        else:
            peers.append(Peer(h.name, key, h.vpn_address, endpoint(h.address, inv.vpn.port), KEEPALIVE))
    return peers, unknown
