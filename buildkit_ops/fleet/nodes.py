"""The nodes of a client's builder: one per build host in the client's placement order, each declaring the
platforms no earlier node declares; through the client's failover proxy when it has one (its listeners, and
the fleet's name checked in the server certificates, since any host of the fleet may answer)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from buildkit_ops.fleet import failover, placement
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.inventory.model import FLEET_NAME


@dataclass(frozen=True)
class Node:
    name: str
    endpoint: str
    servername: str
    platforms: str           # declared, comma-separated ("" declares none)


def builder_nodes(client: Client, hosts: list[placement.Placed]) -> list[Node]:
    if client.failover == "proxy":
        return [Node(f"{client.builder}-{li.name}", f"tcp://127.0.0.1:{li.port}", FLEET_NAME, ",".join(p.declares))
                for li, p in zip(failover.listeners(client, hosts), hosts, strict=True)]
    # (an IPv6 address in brackets: tcp://[2001:db8::5]:1234)
    return [Node(f"{client.builder}-{p.host.name}", f"tcp://{failover.endpoint(p.host)}", p.host.client_address,
                 ",".join(p.declares)) for p in hosts]


def client_nodes(inv: Inventory, client: Client, reported: Mapping[str, str]) -> list[Node]:
    """The client's builder nodes, from the inventory and what the build hosts report they build for."""
    hosts = placement.placed(client, inv.hosts_for(client), reported)
    return builder_nodes(client, hosts)
