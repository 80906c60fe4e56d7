"""The gateway on the lab: a client certificate is an identity with a role, not a master key. A developer may
build but neither list nor prune the shared cache (PERMISSION_DENIED naming who, what and which role may);
the operator may; a removed client's certificate is refused at once, from any address and through another
client's failover proxy, without restarting buildkitd; the audit trail names each call's client, also when two
certificates are used from one machine; buildkitd has no TCP listener of its own."""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml
from helpers import (
    FLEET,
    INV,
    LAB,
    PKI,
    build_runs,
    cache_total,
    gateway_loads,
    invoke,
    invoke_json,
    login,
    put_client_files,
    restore_inventory,
    wait_for,
    wait_until_proxy_sends_home,
    write_project,
)

pytestmark = pytest.mark.lab

B1, B2 = LAB.address("build1"), LAB.address("build2")
SOCK = "unix:///run/buildkit/buildkitd.sock"


@pytest.fixture(scope="module")
def two(lab):
    """build1 serving laptop (failover proxy) and laptop2 (a developer each); laptop2's certificate also copied to
    laptop, as a leaked one would be; everything put back afterwards."""
    saved = INV.read_text()
    assert invoke("provision").returncode == 0      # (both hosts: add-client changes access only)
    for name, address in (("laptop", None), ("laptop2", lab.address("laptop2"))):
        r = invoke("add-client", name, *(("--address", address) if address else ()))
        assert r.returncode == 0, r.stderr
    reg = lab.status()["registry"]
    for machine in ("laptop", "laptop2"):
        login(lab, machine, reg)
        write_project(lab, machine, reg)
    pki = PKI
    put_client_files(lab, "laptop", {"ca.crt": (pki / "ca.crt").read_bytes(),
                                     "client.crt": (pki / "clients/laptop2/client.crt").read_bytes(),
                                     "client.key": (pki / "clients/laptop2/client.key").read_bytes()},
                     where="/root/laptop2-cert")
    wait_until_proxy_sends_home(lab)   # (laptop's builds must land on build1, whose audit trail is read)
    yield lab, reg
    restore_inventory(saved)
    assert invoke("provision", "--prune-clients").returncode == 0


OLDER, NEWER = "/root/laptop2-cert", "/root/laptop2-newer"   # laptop2's certificates, as copied to laptop


def as_laptop2_from_laptop(lab, address: str, args: str, servername: str = "build1", d: str = OLDER):
    return lab.run("laptop", f"timeout 60 buildctl --timeout 10 --addr tcp://{address} --tlsservername {servername} "
                             f"--tlscacert {d}/ca.crt --tlscert {d}/client.crt --tlskey {d}/client.key {args}",
                   capture=True)


def handshake_as_laptop2_from_laptop(lab, address: str, servername: str, d: str = OLDER) -> str:
    """openssl's account of a TLS handshake with laptop2's certificate (it reads the server's alert, which a
    client that writes first may miss under TLS 1.3)."""
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
    pki = PKI
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
    rc, doc, err = invoke_json("audit", "--since", "10m")
    assert rc == 0, err
    # (buildx asks every node of a builder for DiskUsage at once and gives up on the others at the first
    # refusal: which host logged laptop2's refused call varies)
    calls = [c for h in ("build1", "build2") for c in doc[h]["calls"]]
    who = {(c["client"], c["method"].rsplit("/", 1)[1], c["result"]) for c in calls}
    assert ("laptop", "Solve", "ok") in who and ("laptop2", "DiskUsage", "denied") in who
    assert ("laptop2", "ListWorkers", "ok") in who            # laptop2's certificate, used from laptop
    solve = next(c for c in calls if c["client"] == "laptop" and c["method"].endswith("/Solve"))
    assert solve["ms"] >= 0 and solve["bytes_in"] > 0 and solve["role"] == "developer"
    rc, doc, err = invoke_json("audit", "--host", "build1", "--client", "laptop2", "--since", "10m")
    assert {c["client"] for c in doc["build1"]["calls"]} == {"laptop2"}


def test_builds_name_the_client_of_each_build_also_when_two_certificates_share_a_machine(two):
    lab, _ = two
    t0 = time.time()
    r = as_laptop2_from_laptop(lab, f"{B1}:1234", "build --frontend dockerfile.v0 --local context=/root/proj "
                                                  "--local dockerfile=/root/proj --opt build-arg:N=laptop2")
    assert r.returncode == 0, r.stderr[-1500:]
    r = lab.run("laptop", "docker buildx build --builder buildkit-ops --build-arg N=laptop /root/proj", capture=True)
    assert r.returncode == 0, r.stderr[-1500:]
    rc, doc, err = invoke_json("builds", "--host", "build1", "--since", "10m")
    assert rc == 0, err
    mine = [b for b in doc["build1"]["builds"] if _t(b["started"]) >= t0 - 1]
    # newest first: laptop's builds, then laptop2's, made from the same address
    assert [b["client"] for b in mine][-1] == "laptop2" and {b["client"] for b in mine} == {"laptop", "laptop2"}, mine


SLOW = """FROM {reg}/lab/busybox:latest
ARG N
RUN echo "$N" > /n && sleep 6
"""


def _t(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def test_a_client_over_its_build_limit_waits_its_turn_while_another_client_builds_at_once(two):
    lab, reg = two
    saved = INV.read_text()
    data = yaml.safe_load(saved)
    data["all"]["children"]["clients"]["hosts"]["laptop"]["limits"] = {"builds": 1}
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        loads = gateway_loads(lab)
        r = invoke("provision", "--host", "build1")
        # the new limit is put in force in place, through the runtime API: no reload (the builds below prove it)
        assert r.returncode == 0 and "clients.map, ci-roles.map, limits.map, queues.map, room.map, crl.pem in force in place" in r.stderr, \
            r.stdout + r.stderr
        assert gateway_loads(lab) == loads
        wait_until_proxy_sends_home(lab)
        for machine, d in (("laptop", "/root/slow1"), ("laptop", "/root/slow2"), ("laptop2", "/root/slow")):
            lab.run(machine, f"mkdir -p {d} && cat > {d}/Dockerfile", capture=True, input=SLOW.format(reg=reg["address"]))
        since = time.time()

        def build(machine: str, d: str, delay: float):
            time.sleep(delay)
            return lab.run(machine, f"docker buildx build --builder buildkit-ops --progress plain "
                                    f"--build-arg N={time.time_ns()} {d}", capture=True)
        with ThreadPoolExecutor(3) as pool:
            runs = [pool.submit(build, "laptop", "/root/slow1", 0), pool.submit(build, "laptop", "/root/slow2", 1),
                    pool.submit(build, "laptop2", "/root/slow", 2)]
            results = [f.result() for f in runs]
        assert all(r.returncode == 0 for r in results), [r.stderr[-3000:] for r in results if r.returncode]
        rc, doc, err = invoke_json("audit", "--host", "build1", "--since", "10m")
        assert rc == 0, err
        calls = doc["build1"]["calls"]
        (first, second), (other,) = build_runs(calls, "laptop", since), build_runs(calls, "laptop2", since)
        # laptop's second build waited for its turn and ran once its first had ended; laptop2's ran meanwhile,
        # without waiting (each is (began running, ended, waited ms))
        assert first[2] < 1000 and second[2] >= 3000 and second[0] >= first[1] - 0.5, (first, second)
        assert other[2] == 0 and other[0] < first[1], (other, first)
    finally:
        INV.write_text(saved)
        assert invoke("provision", "--host", "build1").returncode == 0


MINUTE = """FROM {reg}/lab/busybox:latest
ARG N
RUN echo "$N" > /n && sleep 60
"""


def start_slow_build(lab, reg, machine: str) -> None:
    """A 60 s build of `machine` in the background; its outcome and end time in /root/slow.log."""
    lab.run(machine, "mkdir -p /root/slow && cat > /root/slow/Dockerfile", capture=True,
            input=MINUTE.format(reg=reg["address"]))
    subprocess.run(["docker", "exec", "-d", lab.container(machine), "sh", "-c",
                    f"docker buildx build --builder buildkit-ops --progress plain --build-arg N={time.time_ns()} "
                    f"/root/slow > /root/slow.log 2>&1; echo rc=$? ended=$(date +%s.%N) >> /root/slow.log"],
                   check=True)


def slow_build_end(lab, machine: str) -> tuple[int, float] | None:
    m = re.search(r"rc=(\d+) ended=([0-9.]+)", lab.run(machine, "cat /root/slow.log", capture=True).stdout)
    return (int(m.group(1)), float(m.group(2))) if m else None


def builds_running(lab) -> int:
    """Builds under way on build1 and build2 (laptop2's home may be either)."""
    return sum(lab.run(h, "docker exec buildkitd buildctl --addr unix:///run/buildkit/buildkitd.sock debug "
                          "histories --format '{{if .Record}}{{if not .Record.CompletedAt}}running {{end}}{{end}}'",
                       capture=True).stdout.count("running") for h in ("build1", "build2"))


def connections_of(lab, address: str) -> int:
    """Established connections from `address` to the BuildKit port on build1 and build2."""
    return sum(len(lab.run(h, f"ss -tnH state established '( sport = :1234 and dst {address} )'", capture=True)
                   .stdout.splitlines()) for h in ("build1", "build2"))


def test_a_removed_client_is_refused_at_once_from_any_address_without_a_restart(two):
    """Every certificate laptop2 ever had: its first one (the copy on laptop, as a stolen key would be) outlives
    a rotation, and both that and the reissued one are refused on every host once laptop2 is removed; laptop2's
    running build ends as remove-client returns, while laptop's, started with it, goes on to succeed."""
    lab, reg = two
    since = started(lab)
    assert invoke("rotate-certs", "--client", "laptop2").returncode == 0
    pki = PKI
    put_client_files(lab, "laptop", {"ca.crt": (pki / "ca.crt").read_bytes(),
                                     "client.crt": (pki / "clients/laptop2/client.crt").read_bytes(),
                                     "client.key": (pki / "clients/laptop2/client.key").read_bytes()},
                     where=NEWER)
    assert as_laptop2_from_laptop(lab, f"{B1}:1234", "debug workers").returncode == 0   # the first: still good
    rows = {r["name"]: r for r in invoke_json("list-clients")[1]}
    assert rows["laptop2"]["live_certs"] == 2, rows["laptop2"]
    wait_until_proxy_sends_home(lab)
    for machine in ("laptop", "laptop2"):
        start_slow_build(lab, reg, machine)
    wait_for(lambda: builds_running(lab) >= 2, timeout=60, what="both 60 s builds running")
    r = invoke("remove-client", "laptop2")
    returned = time.time()
    assert r.returncode == 0, r.stderr
    # on the servers, laptop2's build is over and none of its connections is left, within 5 s (in fact before
    # remove-client returned); laptop's goes on
    wait_for(lambda: builds_running(lab) == 1 and not connections_of(lab, lab.address("laptop2")), timeout=5,
             what="laptop2's build and connections to end on the servers")
    gone = time.time()
    rc, ended = wait_for(lambda: slow_build_end(lab, "laptop2"), timeout=90, what="laptop2's buildx to give up")
    print(f"\nlaptop2's build: over on the servers {gone - returned:+.2f} s after remove-client returned (its "
          f"connections ended before it returned); its buildx reported the failure {ended - returned:+.2f} s after")
    assert rc != 0
    # from laptop's (allowed) address, on both hosts, and through laptop's failover proxy: each certificate
    # refused in the handshake
    for address, servername in ((f"{B1}:1234", "build1"), (f"{B2}:1234", "build2"), ("127.0.0.1:12340", FLEET)):
        for d in (OLDER, NEWER):
            r = as_laptop2_from_laptop(lab, address, "debug workers", servername, d)
            assert r.returncode != 0 and "linux/amd64" not in r.stdout, (d, address, r.stdout)
            said = handshake_as_laptop2_from_laptop(lab, address, servername, d)
            assert "alert certificate revoked" in said and "SSL alert number 44" in said, (d, address, said)
    assert started(lab) == since                                  # buildkitd was not restarted
    rc, doc, err = invoke_json("status", "--host", "build1")
    crl = doc["hosts"]["build1"]["crl"]
    assert crl["current"] is True and crl["standing"] == "same" and crl["number"] >= 1, crl
    rc, _ = wait_for(lambda: slow_build_end(lab, "laptop"), timeout=90, what="laptop's build to end")
    assert rc == 0, lab.run("laptop", "tail -20 /root/slow.log", capture=True).stdout   # laptop's build went on
    assert lab.run("laptop", "docker buildx build --builder buildkit-ops /root/proj", capture=True).returncode == 0
