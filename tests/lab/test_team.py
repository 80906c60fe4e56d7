"""A team of 230 on the lab. laptop, laptop2 (real machines) and 228 records of developers and CI runners
(`connection: none`, addresses in the lab's /16 beyond its /24, where nobody answers: allowlisted, never contacted)
provision both hosts; each host's firewall lets in exactly the inventory's 230 addresses (one set, no ufw rule per
client); the gateway manages the same files as for 2 clients; the real clients build and push. When the team
leaves the inventory, the firewall keeps their addresses (a client is never dropped by accident) until
`--prune-clients`, and the gateway keeps none of their files."""
from __future__ import annotations

import pytest
import yaml
from helpers import INV, LAB, build, invoke, let_in, login, restore_inventory, write_project

pytestmark = pytest.mark.lab

TEAM = 230
# the lab's /16 beyond its machines' /24 (10.77.0.0/24 -> 10.77.1.1 ...): nobody answers there
PREFIX = ".".join(LAB.subnet.split(".")[:2])


def records() -> dict[str, dict]:
    """TEAM - 2 records: one CI runner in eight, the rest developers."""
    return {f"{'ci' if i % 8 == 0 else 'dev'}{i:03d}": {"address": f"{PREFIX}.{1 + i // 250}.{1 + i % 250}",
                                                          "connection": "none"} for i in range(1, TEAM - 1)}


def wanted(data: dict) -> set[str]:
    return {f"{name} {c['address']}" for name, c in data["all"]["children"]["clients"]["hosts"].items()}


def gateway_files(lab, host: str = "build1") -> list[str]:
    return lab.run(host, "cd /opt/buildkit-ops/gateway && find . -type f | sort", capture=True).stdout.split()


@pytest.fixture(scope="module")
def team(lab):
    saved = INV.read_text()
    assert invoke("provision").returncode == 0
    few = gateway_files(lab)
    r = invoke("add-client", "laptop2", "--address", lab.address("laptop2"))
    assert r.returncode == 0, r.stderr[-2000:]
    data = yaml.safe_load(INV.read_text())
    data["all"]["children"]["clients"]["hosts"].update(records())
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    r = invoke("provision")
    assert r.returncode == 0, r.stderr[-3000:]
    yield lab, data, few
    restore_inventory(saved)
    assert invoke("provision", "--prune-clients").returncode == 0


def test_each_host_lets_in_exactly_the_teams_addresses_through_one_set(team):
    lab, data, _ = team
    assert len(wanted(data)) == TEAM
    for host in ("build1", "build2"):
        assert let_in(lab, host) == wanted(data), host
        rules = lab.run(host, "ufw show added", capture=True).stdout
        assert "buildkit-ops client" not in rules and "1234" not in rules, rules    # (no ufw rule per client)
    # the set lets them in (the control: laptop2, in it, reaches the port; the intruder, not in it, does not)
    b1 = LAB.address("build1")
    assert lab.run("laptop2", f"nc -z -w3 {b1} 1234").returncode == 0
    assert lab.run("intruder", f"nc -z -w3 {b1} 1234").returncode != 0


def test_the_gateway_manages_the_same_files_for_2_and_230_clients(team):
    lab, _, few = team
    assert gateway_files(lab) == few


def test_the_real_clients_build_and_push_in_a_team_of_230(team):
    lab, _, _ = team
    reg = lab.status()["registry"]
    for machine in ("laptop", "laptop2"):
        login(lab, machine, reg)
        write_project(lab, machine, reg)
        r = build(lab, machine, f"{reg['address']}/lab/team-{machine}:1")
        assert r.returncode == 0, r.stderr[-2000:]


def test_a_team_that_left_the_inventory_keeps_its_addresses_until_pruned_and_no_gateway_file(team):
    lab, data, few = team
    shipped = yaml.safe_load(INV.read_text())
    left = {k: v for k, v in shipped["all"]["children"]["clients"]["hosts"].items() if k not in records()}
    shipped["all"]["children"]["clients"]["hosts"] = left
    without = INV.with_name(INV.stem + "-without-team.yml")
    without.write_text(yaml.safe_dump(shipped, sort_keys=False))
    try:
        r = invoke("provision", "--host", "build1", "-i", str(without))
        assert r.returncode == 0, r.stderr[-3000:]
        assert "rule for dev001 (" in r.stderr and "kept" in r.stderr
        assert let_in(lab) == wanted(data)                                   # never dropped by accident
        assert gateway_files(lab) == few                                     # the gateway: nothing of theirs
        r = invoke("provision", "--host", "build1", "--prune-clients", "-i", str(without))
        assert r.returncode == 0, r.stderr[-3000:]
        assert let_in(lab) == wanted(shipped)
        assert lab.run("laptop", f"nc -z -w3 {LAB.address('build1')} 1234").returncode == 0   # (still in)
    finally:
        without.unlink()
