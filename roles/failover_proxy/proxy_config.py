"""The failover proxy's haproxy.cfg, rendered from the role's template (an operator's templates/ beside the
inventory first): a listener per node of the client's builder (buildkit_ops/fleet/failover.py), each checking its
hosts with a TLS ClientHello."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from buildkit_ops.engine import role_path
from buildkit_ops.engine.contract import Templates
from buildkit_ops.fleet import placement
from buildkit_ops.fleet.failover import Listener, listeners
from buildkit_ops.inventory import Client, Inventory

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "failover-haproxy.cfg.j2"
CHECK_INTERVAL = 2          # seconds between health checks; a host is down after two failed ones
CONNECT_TIMEOUT = 3


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
    """The proxy's template: the operator's templates/ beside the inventory first, then the role's own."""
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
