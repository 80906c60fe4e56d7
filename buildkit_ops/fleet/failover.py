"""Failover for a client's builds: a small TCP proxy (HAProxy, in a container) on the client machine.

buildx does not skip a node that does not answer (read in docker/buildx: `nodeResolver.get` chooses a node by
platform alone, and `filterAvailableNodes` drops only nodes whose driver could not be created), so a client
whose home host is down fails its builds. With `failover: proxy`, each node of the client's builder points at
a local listener instead (127.0.0.1:failover_port + i); the listener forwards to the node's build host and,
while that host's health check fails, to the next host in the client's placement order that serves the same
platforms. TLS passes through untouched: every server certificate also carries the fleet name below, which
the builder checks (`servername`, inventory_model.FLEET_NAME), so whichever fleet host answers proves it is one of ours.

When the home host answers its checks again, new builds go home again. This module says where each listener
sends builds; the proxy's configuration is the failover_proxy role's (roles/failover_proxy/proxy_config.py)."""
from __future__ import annotations

from dataclasses import dataclass, field

from buildkit_ops.engine.render import safe_dirname
from buildkit_ops.fleet import placement
from buildkit_ops.inventory import BuildHost, Client

CONFIG_IN_CONTAINER = "/usr/local/etc/haproxy/haproxy.cfg"


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
