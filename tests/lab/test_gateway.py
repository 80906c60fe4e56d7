"""The gateway on the lab: a client certificate is an identity with a role, not a master key. A developer may
build but neither list nor prune the shared cache (PERMISSION_DENIED naming who, what and which role may);
the operator may; a removed client's certificate is refused at once, from any address and through another
client's failover proxy, without restarting buildkitd; the audit trail names each call's client, also when two
certificates are used from one machine; buildkitd has no TCP listener of its own."""
from __future__ import annotations

import re

import pytest
from helpers import (
    INV,
    ROOT,
    cache_total,
    invoke,
    invoke_json,
    login,
    put_client_files,
    restore_inventory,
    wait_until_proxy_sends_home,
    write_project,
)

pytestmark = pytest.mark.lab

B1 = "10.77.0.11"
SOCK = "unix:///run/buildkit/buildkitd.sock"
FLEET = "fleet.buildkit-ops.invalid"


@pytest.fixture(scope="module")
def two(lab):
    """build1 serving laptop (failover proxy) and laptop2 (a developer each); laptop2's certificate also copied to
    laptop, as a leaked one would be; everything put back afterwards."""
    saved = INV.read_text()
    assert invoke("provision", "--host", "build1").returncode == 0
    for name, address in (("laptop", None), ("laptop2", "10.77.0.22")):
        r = invoke("add-client", name, *(("--address", address) if address else ()))
        assert r.returncode == 0, r.stderr
    reg = lab.status()["registry"]
    for machine in ("laptop", "laptop2"):
        login(lab, machine, reg)
        write_project(lab, machine, reg)
    pki = ROOT / ".pki"
    put_client_files(lab, "laptop", {"ca.crt": (pki / "ca.crt").read_bytes(),
                                     "client.crt": (pki / "clients/laptop2/client.crt").read_bytes(),
                                     "client.key": (pki / "clients/laptop2/client.key").read_bytes()},
                     where="/root/laptop2-cert")
    wait_until_proxy_sends_home(lab)   # (laptop's builds must land on build1, whose audit trail is read)
    yield lab, reg
    restore_inventory(saved)
    assert invoke("provision", "--prune-clients").returncode == 0


def as_laptop2_from_laptop(lab, address: str, args: str, servername: str = "build1"):
    d = "/root/laptop2-cert"
    return lab.run("laptop", f"timeout 60 buildctl --timeout 10 --addr tcp://{address} --tlsservername {servername} "
                             f"--tlscacert {d}/ca.crt --tlscert {d}/client.crt --tlskey {d}/client.key {args}",
                   capture=True)


def handshake_as_laptop2_from_laptop(lab, address: str, servername: str) -> str:
    """openssl's account of a TLS handshake with laptop2's certificate (it reads the server's alert, which a
    client that writes first may miss under TLS 1.3)."""
    d = "/root/laptop2-cert"
    host, port = address.rsplit(":", 1)
    return lab.run("laptop", f"sleep 2 | timeout 10 openssl s_client -connect {host}:{port} -servername {servername} "
                             f"-CAfile {d}/ca.crt -cert {d}/client.crt -key {d}/client.key -alpn h2 2>&1",
                   capture=True).stdout


def started(lab) -> str:
    return lab.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout.strip()


def test_buildkitd_listens_on_its_socket_only_and_the_gateway_holds_the_port(two):
    lab, _ = two
    listeners = lab.run("build1", "ss -ltnpH", capture=True).stdout
    assert "buildkitd" not in listeners and re.search(r":1234 .*haproxy", listeners), listeners
    assert lab.run("build1", "test -S /run/buildkit-ops/buildkitd.sock").returncode == 0


def test_a_developer_may_build_but_neither_list_nor_prune_the_shared_cache(two):
    lab, reg = two
    r = lab.run("laptop", f"docker buildx build --builder buildkit-ops --progress plain -t {reg['address']}/team/"
                          f"gw:1 --push /root/proj", capture=True)
    assert r.returncode == 0, r.stderr[-2000:]
    before = cache_total(lab)
    for args, method in (("du --verbose", "DiskUsage"), ("prune -af", "Prune")):
        r = lab.run("laptop2", f"docker buildx {args} --builder buildkit-ops", capture=True)
        assert r.returncode != 0
        assert (f"PermissionDenied: laptop2 (role developer) may not call /moby.buildkit.v1.Control/{method}: it "
                f"needs role admin") in r.stderr.replace("rpc error: code = PermissionDenied desc = ",
                                                         "PermissionDenied: "), r.stderr
    assert cache_total(lab) == before > 0         # laptop's cache survived
    # the operator's certificate may (from build1 itself, through the gateway's port)
    pki = ROOT / ".pki"
    for name in ("client.crt", "client.key"):
        lab.run("build1", f"cat > /tmp/op-{name}", capture=True, input=(pki / "operator" / name).read_text())
    lab.run("build1", "cp /opt/buildkit-ops/tls/ca.crt /tmp/op-ca.crt && docker cp /tmp/op-ca.crt buildkitd:/tmp/ && "
                      "docker cp /tmp/op-client.crt buildkitd:/tmp/ && docker cp /tmp/op-client.key buildkitd:/tmp/",
            capture=True)
    r = lab.run("build1", "docker exec buildkitd buildctl --addr tcp://127.0.0.1:1234 --tlsservername build1 "
                          "--tlscacert /tmp/op-ca.crt --tlscert /tmp/op-client.crt --tlskey /tmp/op-client.key du",
                capture=True)
    lab.run("build1", "docker exec buildkitd rm -f /tmp/op-ca.crt /tmp/op-client.crt /tmp/op-client.key; "
                      "rm -f /tmp/op-*", capture=True)
    assert r.returncode == 0 and "Total:" in r.stdout, r.stderr


def test_the_audit_trail_names_each_client_also_from_one_machine(two):
    lab, _ = two
    assert as_laptop2_from_laptop(lab, f"{B1}:1234", "debug workers").returncode == 0
    rc, doc, err = invoke_json("audit", "--host", "build1", "--since", "10m")
    assert rc == 0, err
    calls = doc["build1"]["calls"]
    who = {(c["client"], c["method"].rsplit("/", 1)[1], c["result"]) for c in calls}
    assert ("laptop", "Solve", "ok") in who and ("laptop2", "DiskUsage", "denied") in who
    assert ("laptop2", "ListWorkers", "ok") in who            # laptop2's certificate, used from laptop
    solve = next(c for c in calls if c["client"] == "laptop" and c["method"].endswith("/Solve"))
    assert solve["ms"] >= 0 and solve["bytes_in"] > 0 and solve["role"] == "developer"
    rc, doc, err = invoke_json("audit", "--host", "build1", "--client", "laptop2", "--since", "10m")
    assert {c["client"] for c in doc["build1"]["calls"]} == {"laptop2"}


def test_a_removed_client_is_refused_at_once_from_any_address_without_a_restart(two):
    lab, _ = two
    since = started(lab)
    assert as_laptop2_from_laptop(lab, f"{B1}:1234", "debug workers").returncode == 0
    r = invoke("remove-client", "laptop2")
    assert r.returncode == 0, r.stderr
    # from laptop's (allowed) address, and through laptop's failover proxy: refused in the handshake
    for address, servername in ((f"{B1}:1234", "build1"), ("127.0.0.1:12340", FLEET)):
        r = as_laptop2_from_laptop(lab, address, "debug workers", servername)
        assert r.returncode != 0 and "linux/amd64" not in r.stdout, r.stdout
        said = handshake_as_laptop2_from_laptop(lab, address, servername)
        assert "alert certificate revoked" in said and "SSL alert number 44" in said, said
    assert started(lab) == since                                  # buildkitd was not restarted
    rc, doc, err = invoke_json("status", "--host", "build1")
    crl = doc["hosts"]["build1"]["crl"]
    assert crl["current"] is True and crl["number"] >= 1, crl
    assert lab.run("laptop", "docker buildx build --builder buildkit-ops /root/proj", capture=True).returncode == 0
