"""Failover for a client's builds: a small TCP proxy (HAProxy, in a container) on the client machine.

buildx does not skip a node that does not answer (read in docker/buildx: `nodeResolver.get` chooses a node by
platform alone, and `filterAvailableNodes` drops only nodes whose driver could not be created), so a client
whose home host is down fails its builds. With `failover: proxy`, each node of the client's builder points at
a local listener instead (127.0.0.1:failover_port + i); the listener forwards to the node's build host and,
while that host's health check fails, to the next host in the client's placement order that serves the same
platforms. TLS passes through untouched: every server certificate also carries the fleet name below, which
the builder checks (`servername`, inventory_model.FLEET_NAME), so whichever fleet host answers proves it is one of ours.

When the home host answers its checks again, new builds go home again."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine import role_path
from buildkit_ops.engine.contract import Templates
from buildkit_ops.engine.render import safe_dirname
from buildkit_ops.fleet import placement
from buildkit_ops.inventory import BuildHost, Client, Inventory

TEMPLATES = Path(__file__).parent.parent / "templates"   # (the repository's templates/)
TEMPLATE = "failover-haproxy.cfg.j2"
CONFIG_IN_CONTAINER = "/usr/local/etc/haproxy/haproxy.cfg"
CHECK_INTERVAL = 2          # seconds between health checks; a host is down after two failed ones
CONNECT_TIMEOUT = 3


@dataclass
class Server:
    name: str
    endpoint: str            # address:port


@dataclass
class Listener:
    name: str                # the host the node belongs to
    port: int                # on the client's 127.0.0.1
    platforms: set[str] = field(default_factory=set)
    servers: list[Server] = field(default_factory=list)


def container_name(client: Client) -> str:
    return f"buildkit-ops-proxy-{safe_dirname(client.builder)}"


def endpoint(host: BuildHost) -> str:
    addr = host.client_address
    return f"[{addr}]:{host.buildkit.port}" if ":" in addr else f"{addr}:{host.buildkit.port}"


def listeners(client: Client, hosts: list[placement.Placed]) -> list[Listener]:
    """One listener per node of the builder (the client's hosts in placement order). A node's fallbacks are the
    client's other hosts, in the same order, that serve every platform the node serves (a host whose platforms
    are unknown serves none for this purpose)."""
    out = []
    for i, p in enumerate(hosts):
        mine = set(p.serves)
        backups = [o.host for o in hosts if o is not p and mine and mine <= set(o.serves)]
        out.append(Listener(p.host.name, client.failover_port + i, mine,
                            [Server(s.name, endpoint(s)) for s in [p.host, *backups]]))
    return out


@dataclass
class Proxy:
    """A client's failover proxy: its listeners and the configuration rendered from them."""
    listeners: list[Listener]
    config: str


def proxy(client: Client, hosts: list[placement.Placed], templates: Templates) -> Proxy | None:
    """The client's failover proxy, or None for a client without one."""
    if client.failover != "proxy":
        return None
    ls = listeners(client, hosts)
    return Proxy(ls, config(ls, templates))


def templates(inv: Inventory) -> Templates:
    """The proxy's template: the operator's templates/ beside the inventory first, then the repository's."""
    site = role_path.site_folder(inv.file.parent, "templates")
    return Templates(*([site] if site else []), TEMPLATES)


# A TLS ClientHello (SNI: the fleet name, ALPN h2), recorded once with Python's ssl module: the health check
# sends it and expects a TLS handshake record back. A host's gateway refuses connections while its buildkitd is
# down, so a host whose port is open but cannot build fails the check too (a TCP connect alone would pass).
CLIENT_HELLO = (
    "1603010200010001fc030362c858fc99735636b9c5d5d86c47749e35fe056001ebd3ceb929e820b1285f99206292ba992ff99a8ca5cbc064dd3e9883aec68a367dd6c12a8a76325f879ea7380024130213031301c02cc030c02bc02fcca9cca8c024c028"
    "c023c027009f009e006b006700ff0100018f0000001f001d00001a666c6565742e6275696c646b69742d6f70732e696e76616c6964000b000403000102000a00160014001d0017001e001900180100010101020103010400230000001000050003026832"
    "0016000000170000000d002a0028040305030603080708080809080a080b080408050806040105010601030303010302040205020602002b00050403040303002d00020101003300260024001d0020aa95450b64095fa14675e412d3d4c32896fea111ad"
    "067250c119d1b4306e9259001500ca00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
    "0000000000000000000000000000000000"
)


def config(listeners_: list[Listener], templates: Templates | None = None) -> str:
    """The proxy's haproxy.cfg; every value passes the haproxy escaper (one plain word, or refused)."""
    hello = [CLIENT_HELLO[i:i + 200] for i in range(0, len(CLIENT_HELLO), 200)]
    return (templates or Templates(TEMPLATES)).render(TEMPLATE, "haproxy", nodes=listeners_, client_hello=hello,
                                                      check_interval=CHECK_INTERVAL, connect_timeout=CONNECT_TIMEOUT)


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
