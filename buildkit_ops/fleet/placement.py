"""Which build host is a client's home: rendezvous (highest-random-weight) hashing.

Every (client, host) pair gets a score from a hash of both names, scaled by the host's weight; a client's
hosts in descending score order are its home and then its fallbacks. Adding or removing a host moves only
the clients whose top score changes (about 1/N of them), and every machine computes the same answer from
the names alone: no state to keep, nothing to coordinate. An inventory `home:` pins a client.

buildx sends a build to the first node of the builder that serves the platform, so the order of a client's
builder nodes is its placement (`placed`, which the builder's nodes and the failover proxy's listeners both
follow)."""
from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass

from buildkit_ops.inventory import BuildHost, Client, Inventory


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


def client_homes(inv: Inventory) -> dict[str, str]:
    """client name -> home host name, each client placed among the hosts that may serve it (its tenant's)."""
    return {c.name: order(c, inv.hosts_for(c))[0].name for c in inv.clients.values() if inv.hosts_for(c)}


@dataclass(frozen=True)
class Placed:
    """One of a client's build hosts, in the client's order (home first)."""
    host: BuildHost
    serves: tuple[str, ...]      # platforms it builds for: the inventory's `platforms`, else what buildkitd reported
    declares: tuple[str, ...]    # those of them no earlier host of the client serves


def placed(client: Client, hosts: list[BuildHost], reported: Mapping[str, str]) -> list[Placed]:
    """The client's hosts in placement order, with the platforms each serves and declares. buildx lets only one
    node of a builder declare a platform: appending a node removes its platforms from every other node
    (docker/buildx store/nodegroup.go, `validateDuplicates`). So each platform is declared by the first host in
    the client's order that serves it, which is where buildx sends builds of it; a node left with nothing to
    declare still takes builds of platforms no node declares."""
    out: list[Placed] = []
    claimed: set[str] = set()
    for h in order(client, hosts):
        serves = tuple(h.platforms) if h.platforms else tuple(p for p in reported.get(h.name, "").split(",") if p)
        out.append(Placed(h, serves, tuple(p for p in serves if p not in claimed)))
        claimed.update(serves)
    return out
