"""Which build host is a client's home: rendezvous (highest-random-weight) hashing.

Every (client, host) pair gets a score from a hash of both names, scaled by the host's weight; a client's
hosts in descending score order are its home and then its fallbacks. Adding or removing a host moves only
the clients whose top score changes (about 1/N of them), and every machine computes the same answer from
the names alone: no state to keep, nothing to coordinate. An inventory `home:` pins a client.

buildx sends a build to the first node of the builder that serves the platform, so the order of a client's
builder nodes is its placement (clients.builder_nodes)."""
from __future__ import annotations

import hashlib
import math

from buildkit_ops.inventory import BuildHost, Client


def score(client: str, host: str, weight: int) -> float:
    """Weighted rendezvous score: -weight / ln(u), u uniform in (0, 1) from the pair's hash."""
    digest = hashlib.sha256(f"{client}\0{host}".encode()).digest()
    u = (int.from_bytes(digest[:8], "big") + 1) / (2**64 + 1)
    return -weight / math.log(u)


def order(client: Client, hosts: list[BuildHost]) -> list[BuildHost]:
    """The client's hosts, home first: its pinned home if it has one, then by descending score."""
    ranked = sorted(hosts, key=lambda h: score(client.name, h.name, h.weight), reverse=True)
    if client.home is not None:
        ranked.sort(key=lambda h: h.name != client.home)  # stable: the rest keep their order
    return ranked


def homes(clients: list[Client], hosts: list[BuildHost]) -> dict[str, str]:
    """client name -> home host name."""
    return {c.name: order(c, hosts)[0].name for c in clients} if hosts else {}
