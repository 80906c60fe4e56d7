"""Placement by rendezvous hashing: spread, stability when hosts come and go, weights, pins, and the order of
a client's builder nodes (home first)."""
from __future__ import annotations

import dataclasses
from collections import Counter

import yaml
from conftest import ROOT

from buildkit_ops import inventory as I
from buildkit_ops.fleet import placement
from buildkit_ops.fleet.nodes import client_nodes


def fleet(n: int, weights: dict[str, int] | None = None) -> list[I.BuildHost]:
    base = I.load(ROOT / "inventory.yml").hosts["build1"]
    return [dataclasses.replace(base, name=f"build{i}", weight=(weights or {}).get(f"build{i}", 100))
            for i in range(1, n + 1)]


def client(name: str, home: str | None = None) -> I.Client:
    return dataclasses.replace(I.load(ROOT / "inventory.yml").clients["laptop"], name=name, home=home)


CLIENTS = [client(f"dev{i}") for i in range(2000)]


def test_clients_spread_evenly_over_the_hosts():
    counts = Counter(placement.homes(CLIENTS, fleet(4)).values())
    assert set(counts) == {"build1", "build2", "build3", "build4"}
    assert all(abs(c - 500) < 75 for c in counts.values()), counts


def test_adding_a_host_moves_only_the_clients_it_takes():
    before, after = placement.homes(CLIENTS, fleet(4)), placement.homes(CLIENTS, fleet(5))
    moved = [c for c in before if before[c] != after[c]]
    assert all(after[c] == "build5" for c in moved)         # a client only ever moves to the new host
    assert 0.15 < len(moved) / len(CLIENTS) < 0.25, len(moved)  # about 1/5 of them


def test_removing_a_host_moves_only_its_own_clients():
    before, after = placement.homes(CLIENTS, fleet(5)), placement.homes(CLIENTS, fleet(4))
    assert all(before[c] == "build5" for c in before if before[c] != after[c])


def test_weight_is_a_share():
    counts = Counter(placement.homes(CLIENTS, fleet(2, {"build2": 300})).values())
    assert 2.5 < counts["build2"] / counts["build1"] < 3.6, counts


def test_a_pin_wins_and_the_rest_keep_their_order():
    hosts = fleet(4)
    free = [h.name for h in placement.order(client("dev7"), hosts)]
    pinned = [h.name for h in placement.order(client("dev7", home=free[-1]), hosts)]
    assert pinned == [free[-1], *free[:-1]]


def test_a_clients_builder_lists_its_home_first_and_declared_platforms(tmp_path):
    data = yaml.safe_load((ROOT / "inventory.yml").read_text())
    data["all"]["children"]["buildhosts"]["hosts"]["build2"]["platforms"] = ["linux/arm64"]
    data["all"]["children"]["clients"]["hosts"]["laptop"]["home"] = "build2"
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(data))
    inv = I.load(tmp_path / "inv.yml")
    nodes = client_nodes(inv, inv.clients["laptop"], {"build1": "linux/amd64", "build2": "linux/amd64"})
    assert [(n.name, n.platforms) for n in nodes] == [("buildkit-ops-build2", "linux/arm64"),
                                                            ("buildkit-ops-build1", "linux/amd64")]


def test_a_home_that_is_no_build_host_is_refused(tmp_path):
    from unit_helpers import refusal
    assert refusal(tmp_path, lambda d: d["all"]["children"]["clients"]["hosts"]["laptop"].update(home="build9")) == (
        "inv.yml: all.children.clients.hosts.laptop.home: 'build9' is not a build host\n  fix: use one of: build1")
