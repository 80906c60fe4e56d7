"""A WireGuard configuration file (wg-quick's), made by a serializer: every value is checked against its own
grammar (an address, a base64 key, host:port, a machine name), so that no value can add a line or a key. The
private key is never in it: wg-quick gives the interface the key file the machine made (PostUp)."""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from buildkit_ops.engine.render import RenderError
from buildkit_ops.inventory import values
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


def render(address: str, prefix: int, key_file: str, peers: list[Peer], listen_port: int | None = None) -> bytes:
    """The interface (its tunnel address in the tunnel's network, its UDP port on a build host) and one section per
    peer, in name order."""
    if not re.fullmatch(r"/[a-z0-9/._-]+", key_file) or not 8 <= int(prefix) <= 128:
        raise RenderError(f"{key_file!r} / {prefix!r} cannot be written into a WireGuard configuration")
    lines = ["# written by buildkit-ops from inventory.yml: do not edit here (docs/vpn.md)", "[Interface]",
             f"Address = {_address(address)}/{int(prefix)}"]
    if listen_port is not None:
        lines.append(f"ListenPort = {int(listen_port)}")
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
