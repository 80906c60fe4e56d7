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

import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine.render import render, safe_dirname
from buildkit_ops.engine.shell import quote
from buildkit_ops.fleet import placement
from buildkit_ops.inventory import BuildHost, Client, Inventory

TEMPLATE = Path(__file__).parent.parent / "templates" / "failover-haproxy.cfg.j2"
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


def listeners(inv: Inventory, client: Client, platforms: dict[str, str]) -> list[Listener]:
    """One listener per node of the builder (the client's hosts in placement order). A node's fallbacks are the
    client's other hosts, in the same order, that serve every platform the node serves (a host whose platforms
    are unknown serves none for this purpose)."""
    order = placement.order(client, list(inv.hosts.values()))

    def served(h: BuildHost) -> set[str]:
        return set(h.platforms) if h.platforms else {p for p in platforms.get(h.name, "").split(",") if p}

    out = []
    # (the same order as clients.builder_nodes, which declares each platform on the first of them serving it)
    for i, h in enumerate(order):
        mine = served(h)
        backups = [o for o in order if o is not h and mine and mine <= served(o)]
        out.append(Listener(h.name, client.failover_port + i, mine,
                            [Server(s.name, endpoint(s)) for s in [h, *backups]]))
    return out


@dataclass
class Proxy:
    """A client's failover proxy: its listeners and the configuration rendered from them."""
    listeners: list[Listener]
    config: str


def proxy(inv: Inventory, client: Client, platforms: dict[str, str]) -> Proxy | None:
    """The client's failover proxy, or None for a client without one."""
    if client.failover != "proxy":
        return None
    ls = listeners(inv, client, platforms)
    return Proxy(ls, config(ls))


def config(listeners_: list[Listener]) -> str:
    """The proxy's haproxy.cfg; every value passes the haproxy escaper (one plain word, or refused)."""
    return render(TEMPLATE, "haproxy", nodes=listeners_, check_interval=CHECK_INTERVAL,
                  connect_timeout=CONNECT_TIMEOUT)


def config_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ports(listeners_: list[Listener]) -> str:
    """The `-p` publication: the listeners' ports on the client's loopback only."""
    lo, hi = listeners_[0].port, listeners_[-1].port
    return f"127.0.0.1:{lo}-{hi}:{lo}-{hi}"


FACTS = r"""
echo @@proxy_image; docker image inspect --format '{{.Id}}' "$PI" 2>/dev/null || true
L='{{.State.Running}} {{index .Config.Labels "org.buildkit-ops.proxy-config"}}'
echo @@proxy; docker inspect --format "$L" "$PC" 2>/dev/null || true
"""


def fact_vars(client: Client) -> str:
    return f"PI={quote(client.failover_image)}\nPC={quote(container_name(client))}\n"


def up_to_date(facts: dict[str, str], text: str) -> bool:
    return facts.get("proxy") == f"true {config_hash(text)}"


def pull_script(client: Client) -> str:
    return f"docker pull -q {quote(client.failover_image)} >/dev/null\n"


def start_script(client: Client, listeners_: list[Listener], text: str) -> str:
    """(Re)create the proxy container with this configuration, copied in (no bind mount, so it also works with a
    remote or Desktop Docker daemon), restarted with the Docker daemon, and checked to be running."""
    c = quote(container_name(client))
    b64 = base64.b64encode(text.encode()).decode()
    return (f'set -e\nT=$(mktemp -d)\necho {b64} | base64 -d > "$T/haproxy.cfg"\nchmod 644 "$T/haproxy.cfg"\n'
            f"docker rm -f {c} >/dev/null 2>&1 || true\n"
            f"docker create --name {c} --restart unless-stopped "
            f"--label org.buildkit-ops.proxy-config={config_hash(text)} -p {quote(ports(listeners_))} "
            f"--entrypoint haproxy {quote(client.failover_image)} -W -db -f {CONFIG_IN_CONTAINER} >/dev/null\n"
            f'docker cp "$T/haproxy.cfg" {c}:{CONFIG_IN_CONTAINER}\nrm -rf "$T"\n'
            f"docker start {c} >/dev/null\nsleep 1\n"
            f"if [ \"$(docker inspect --format '{{{{.State.Running}}}}' {c})\" != true ]; then "
            f"docker logs --tail 20 {c} >&2; exit 1; fi\n")


def remove_script(client: Client) -> str:
    return f"docker rm -f {quote(container_name(client))} >/dev/null 2>&1 || true\n"
