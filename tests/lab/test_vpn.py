"""The VPN on the lab (docs/vpn.md): WireGuard in user space (wireguard-go: these machines share a kernel without
the module) on build1, build2, laptop and laptop2. Both clients build and push through the tunnel; the BuildKit
port answers nobody outside it (laptop, laptop2, intruder); laptop goes on building from a new address with no
operator command; intruder's own handshakes get no answer; remove-client laptop2 stops it at both walls (no
handshake, certificate revoked) while laptop's running build goes on and neither buildkitd nor a tunnel restarts."""
from __future__ import annotations

import subprocess

import pytest
import yaml
from helpers import (
    INV,
    LAB,
    build,
    gateway_loads,
    invoke,
    invoke_json,
    lab_ip,
    login,
    restore_inventory,
    start_long_build,
    wait_for,
    write_project,
)

pytestmark = pytest.mark.lab

B1, B1_TUNNEL = LAB.address("build1"), "10.213.0.1"
UNIT = "wg-quick@bkops-vpn"


@pytest.fixture(scope="module")
def reg(lab):
    return lab.status()["registry"]


@pytest.fixture(scope="module")
def tunnel(lab, reg):
    """The shipped inventory with a VPN: both hosts provisioned, laptop and laptop2 clients through it."""
    saved = INV.read_text()
    data = yaml.safe_load(saved)
    data["all"]["vars"]["vpn"] = {"kind": "wireguard"}
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    r = invoke("provision")
    assert r.returncode == 0, r.stdout + r.stderr
    for args in (["laptop"], ["laptop2", "--address", LAB.address("laptop2")]):
        r = invoke("add-client", *args)
        assert r.returncode == 0, r.stdout + r.stderr
    for machine in ("laptop", "laptop2"):
        login(lab, machine, reg)
        write_project(lab, machine, reg)
    yield lab
    restore_inventory(saved)
    assert invoke("provision", "--prune-clients").returncode == 0       # the tunnels and their rules go
    assert invoke("update-clients").returncode == 0                     # and the clients' ends
    for machine in ("laptop", "laptop2"):
        lab.run(machine, f"systemctl disable -q --now {UNIT} 2>/dev/null; rm -f /etc/wireguard/bkops-vpn.*",
                capture=True)


def reaches(lab, machine: str, address: str, port: int = 1234) -> bool:
    return lab.run(machine, f"nc -z -w3 {address} {port}", capture=True).returncode == 0


def test_both_clients_build_and_push_through_the_tunnel_and_nobody_reaches_the_port_outside_it(tunnel, reg):
    lab = tunnel
    for machine in ("laptop", "laptop2"):
        r = build(lab, machine, f"{reg['address']}/team/vpn-{machine}:1")
        assert r.returncode == 0, r.stderr[-2000:]
        nodes = lab.run(machine, "docker buildx inspect buildkit-ops", capture=True).stdout
        assert f"tcp://{B1_TUNNEL}:1234" in nodes or "tcp://127.0.0.1:" in nodes, nodes   # (laptop: its proxy)
    for machine in ("laptop", "laptop2", "intruder"):
        assert not reaches(lab, machine, B1), f"{machine} reached {B1}:1234 outside the tunnel"
    assert reaches(lab, "laptop", B1_TUNNEL)                                          # (positive control)
    tls = lab.run("laptop", f"echo | openssl s_client -connect {B1_TUNNEL}:1234 2>&1 | head -20", capture=True).stdout
    assert "BEGIN CERTIFICATE" in tls or "Server certificate" in tls, tls             # mutual TLS inside it
    peers = lab.run("build1", "wg show bkops-vpn peers", capture=True).stdout.split()
    assert len(peers) == 2, peers                                                     # laptop, laptop2: no host
    r = invoke("doctor", "laptop2")                                                   # its tunnel's rungs pass
    assert r.returncode == 0 and "problem" not in r.stdout + r.stderr, r.stdout + r.stderr
    rc, doc, err = invoke_json("status", "--host", "build1")                          # each peer, by name
    vpn = doc["hosts"]["build1"]["vpn"]
    assert vpn["up"] and {p["client"] for p in vpn["peers"]} == {"laptop", "laptop2"}, vpn
    assert all(p["handshake_age"] is not None and p["received"] > 0 for p in vpn["peers"]), vpn


def test_a_client_on_a_new_address_goes_on_building_with_no_operator_command(tunnel, reg):
    lab = tunnel
    # (the old address first: removing a primary address removes its secondaries with it)
    old, new = lab.address("laptop"), lab_ip(29)
    lab.run("laptop", f"ip addr del {old}/24 dev eth0 && ip addr add {new}/24 dev eth0", capture=True)
    try:
        assert f"{old}/" not in lab.run("laptop", "ip -o addr show dev eth0", capture=True).stdout
        r = build(lab, "laptop", f"{reg['address']}/team/vpn-laptop:moved")
        assert r.returncode == 0, r.stderr[-2000:]
        endpoints = lab.run("build1", "wg show bkops-vpn endpoints", capture=True).stdout
        assert f"{new}:" in endpoints, endpoints                                      # the host followed it
    finally:
        lab.run("laptop", f"ip addr del {new}/24 dev eth0; ip addr add {old}/24 dev eth0 2>/dev/null; "
                          f"ip route replace default via {lab_ip(1)} dev eth0 2>/dev/null; true", capture=True)


def test_new_key_pairs_for_a_client_and_for_a_host_strand_nobody(tunnel, reg):
    lab = tunnel

    def key(machine: str) -> str:
        return lab.run(machine, "wg show bkops-vpn public-key", capture=True).stdout.strip()

    before = key("laptop")
    r = invoke("rotate-certs", "--vpn-keys", "--client", "laptop")
    assert r.returncode == 0, r.stdout + r.stderr
    peers = lab.run("build1", "wg show bkops-vpn peers", capture=True).stdout.split()
    assert key("laptop") != before and key("laptop") in peers and before not in peers
    assert build(lab, "laptop", f"{reg['address']}/team/vpn-laptop:client-key").returncode == 0
    host_before = key("build1")
    r = invoke("rotate-certs", "--vpn-keys", "--host", "build1")
    assert r.returncode == 0, r.stdout + r.stderr
    mine = lab.run("laptop", "wg show bkops-vpn peers", capture=True).stdout.split()
    assert key("build1") != host_before and key("build1") in mine and host_before not in mine
    r = lab.run("laptop", "nc -z -w3 10.213.0.1 1234", capture=True)
    assert r.returncode == 0                                                        # build1 itself, in the tunnel
    assert build(lab, "laptop", f"{reg['address']}/team/vpn-laptop:host-key").returncode == 0


def test_a_strangers_handshakes_get_no_answer(tunnel):
    lab = tunnel
    public = lab.run("build1", "wg show bkops-vpn public-key", capture=True).stdout.strip()
    calls = lab.run("build1", "docker logs buildkit-gateway 2>&1 | grep -c 'client=' || true", capture=True).stdout
    for tool in ("/usr/bin/wg", "/usr/bin/wireguard-go"):   # build1's, from provision (apt here: 40 s more)
        binary = subprocess.run(["docker", "exec", lab.container("build1"), "cat", tool], capture_output=True,
                                check=True).stdout
        subprocess.run(["docker", "exec", "-i", lab.container("intruder"), "sh", "-c", f"cat > {tool}.new && "
                        f"chmod 755 {tool}.new && mv {tool}.new {tool}"], input=binary, check=True)
    setup = ("mkdir -p /dev/net; [ -c /dev/net/tun ] || mknod /dev/net/tun c 10 200; umask 077; wg genkey > /tmp/stranger.key; ip link del stranger 2>/dev/null; "
             "(wireguard-go stranger >/dev/null 2>&1); sleep 1; ip addr add 10.213.0.250/24 dev stranger; "
             f"wg set stranger private-key /tmp/stranger.key peer {public} endpoint {B1}:51820 "
             f"allowed-ips {B1_TUNNEL}/32 persistent-keepalive 1; ip link set stranger up")
    r = lab.run("intruder", setup, capture=True)
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        lab.run("intruder", f"ping -c 3 -W 1 {B1_TUNNEL}", capture=True)
        handshake = lab.run("intruder", "wg show stranger latest-handshakes", capture=True).stdout.split()
        assert handshake[-1] == "0", handshake                                        # never answered
        sent = lab.run("intruder", "wg show stranger transfer", capture=True).stdout.split()
        assert int(sent[-1]) > 0, sent                                                # (it did send)
        assert not reaches(lab, "intruder", B1_TUNNEL)
        after = lab.run("build1", "docker logs buildkit-gateway 2>&1 | grep -c 'client=' || true", capture=True).stdout
        assert after == calls                                                         # nothing reached the gateway
    finally:
        lab.run("intruder", "ip link del stranger 2>/dev/null; true", capture=True)


def test_remove_client_stops_it_at_both_walls_and_restarts_nothing(tunnel, reg):
    lab = tunnel
    lab.run("laptop", "mkdir -p /root/l2", capture=True)
    saved = {n: lab.run("laptop2", f"cat /root/.docker/buildkit-ops/buildkit-ops/{n}", capture=True).stdout
             for n in ("ca.pem", "cert.pem", "key.pem")}
    started = lab.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout
    up = lab.run("build1", f"systemctl show -p ActiveEnterTimestamp {UNIT}", capture=True).stdout
    loads = gateway_loads(lab)
    start_long_build(lab, reg, f"{reg['address']}/team/vpn-long:1")
    r = invoke("remove-client", "laptop2")
    assert r.returncode == 0, r.stdout + r.stderr
    # the tunnel: build1 no longer has laptop2 as a peer, and laptop2's next build fails
    assert len(lab.run("build1", "wg show bkops-vpn peers", capture=True).stdout.split()) == 1
    again = build(lab, "laptop2", f"{reg['address']}/team/vpn-laptop2:2")
    assert again.returncode != 0
    # TLS: laptop2's certificate, used from inside laptop's tunnel, is refused as revoked
    for n, text in saved.items():
        lab.run("laptop", f"cat > /root/l2/{n}", capture=True, input=text)
    # (openssl reads the server's alert, which a client that writes first may miss under TLS 1.3)
    tls = lab.run("laptop", f"sleep 2 | timeout 10 openssl s_client -connect {B1_TUNNEL}:1234 -servername build1 "
                            f"-cert /root/l2/cert.pem -key /root/l2/key.pem -CAfile /root/l2/ca.pem -alpn h2 2>&1; true",
                  capture=True).stdout
    assert "alert certificate revoked" in tls, tls[-1500:]
    wait_for(lambda: "rc=" in lab.run("laptop", "cat /root/long.log", capture=True).stdout, timeout=120,
             what="laptop's long build")
    assert "rc=0" in lab.run("laptop", "cat /root/long.log", capture=True).stdout
    assert lab.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout == started
    assert lab.run("build1", f"systemctl show -p ActiveEnterTimestamp {UNIT}", capture=True).stdout == up
    assert gateway_loads(lab) == loads
