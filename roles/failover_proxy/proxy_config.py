"""The failover proxy's haproxy.cfg, rendered from the role's template (an operator's templates/ beside the
inventory first): a listener per node of the client's builder (buildkit_ops/fleet/failover.py), each checking its
hosts: with `placement: spill` or `least-busy`, by asking each host's gateway over mutual TLS whether it has room
for one more build (the client's own certificate and the CA go into the proxy's container); with `home`, by a TLS
ClientHello (does it answer at all)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine import role_path
from buildkit_ops.engine.contract import Templates
from buildkit_ops.fleet import placement
from buildkit_ops.fleet.failover import Listener, listeners
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.inventory.model import FLEET_NAME

TEMPLATES = Path(__file__).parent / "templates"
TEMPLATE = "failover-haproxy.cfg.j2"
CHECK_INTERVAL = 2          # seconds between health checks; a host is down after two failed ones
CONNECT_TIMEOUT = 3
ROOM_CHECKED = ("spill", "least-busy")   # placements whose proxy asks each host for room
# in the proxy's container: the client's certificate and key (one PEM, as HAProxy reads them) and the CA (the
# template names them too), and the sum of those files as they were put there
CLIENT_PEM, CA_PEM = "/usr/local/etc/haproxy/client.pem", "/usr/local/etc/haproxy/ca.pem"
TLS_SUM = "/usr/local/etc/haproxy/tls.sum"


@dataclass
class Proxy:
    """A client's failover proxy: its listeners, the configuration rendered from them, and the files its room
    checks need (container path -> content: the client's key among them, never printed)."""
    listeners: list[Listener]
    config: str
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """What the container was made with: a new configuration makes a new container."""
        return config_hash(self.config)

    @property
    def tls_sum(self) -> str:
        """What its certificate files are (empty without them): new ones go into the running container, which
        reloads gracefully (the builds it carries go on)."""
        return config_hash("".join(hashlib.sha256(v).hexdigest() for _, v in sorted(self.files.items()))) \
            if self.files else ""


def proxy(client: Client, hosts: list[placement.Placed], templates: Templates,
          tls: dict[str, bytes] | None = None) -> Proxy | None:
    """The client's failover proxy, or None for a client without one. `tls`: the client's ca.pem, cert.pem and
    key.pem (without them, as before its certificate is issued, the hosts are checked as with `home`)."""
    if client.failover != "proxy":
        return None
    ls = listeners(client, hosts)
    chosen = client.placement if tls and client.placement in ROOM_CHECKED else "home"
    files = {CLIENT_PEM: tls["cert.pem"] + tls["key.pem"], CA_PEM: tls["ca.pem"]} if tls and chosen != "home" else {}
    return Proxy(ls, config(ls, templates, chosen), files)


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


def config(listeners_: list[Listener], templates: Templates | None = None, placement_: str = "home") -> str:
    """The proxy's haproxy.cfg; every value passes the haproxy escaper (one plain word, or refused)."""
    hello = [CLIENT_HELLO[i:i + 200] for i in range(0, len(CLIENT_HELLO), 200)]
    return (templates or Templates(TEMPLATES)).render(
        TEMPLATE, "haproxy", nodes=listeners_, client_hello=hello, check_interval=CHECK_INTERVAL,
        connect_timeout=CONNECT_TIMEOUT, placement=placement_, room_checked=placement_ in ROOM_CHECKED,
        least_busy=placement_ == "least-busy", fleet_name=FLEET_NAME)


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
