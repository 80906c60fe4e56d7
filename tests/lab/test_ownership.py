"""Builds are their owner's, on the lab (docs/security.md, "Builds are their owner's"): laptop runs a build
with buildx and writes its ref (--metadata-file); laptop2, given that ref, can neither watch it (Status) nor
steer it (the frontend bridge, LLBBridge), nor build with laptop's session (its ID read from the gateway's own
record): each is refused with PERMISSION_DENIED naming laptop2, while laptop's same calls pass (the control),
and laptop's build succeeds. Made an admin, laptop2 may watch laptop's build but still not steer it; the
operator's certificate may do both. The calls are real gRPC over the gateway's mutual TLS, made with curl."""
from __future__ import annotations

import base64
import json
import re
import secrets
import struct
import subprocess
import time

import pytest
import yaml
from helpers import INV, PKI, invoke, login, put_client_files, restore_inventory, wait_for

pytestmark = pytest.mark.lab

SLOW = """FROM {reg}/lab/busybox:latest
ARG N
COPY only-laptop-has-this.txt /
RUN echo "$N" > /n && sleep 60
"""
STATUS, PING = "/moby.buildkit.v1.Control/Status", "/moby.buildkit.v1.frontend.LLBBridge/Ping"
SOLVE = "/moby.buildkit.v1.Control/Solve"


@pytest.fixture(scope="module")
def clients(lab):
    """laptop and laptop2, developers each, with their own certificate files beside their builders'."""
    saved = INV.read_text()
    assert invoke("provision").returncode == 0
    for name in ("laptop", "laptop2"):
        r = invoke("add-client", name, "--address", lab.address(name))
        assert r.returncode == 0, r.stderr
        put_client_files(lab, name, {"ca.crt": (PKI / "ca.crt").read_bytes(),
                                     "client.crt": (PKI / f"clients/{name}/client.crt").read_bytes(),
                                     "client.key": (PKI / f"clients/{name}/client.key").read_bytes()},
                         where="/root/own-cert")
    reg = lab.status()["registry"]
    login(lab, "laptop", reg)
    lab.run("laptop", "mkdir -p /root/slow && echo secret-of-laptop > /root/slow/only-laptop-has-this.txt && "
                      "cat > /root/slow/Dockerfile", capture=True, input=SLOW.format(reg=reg["address"]))
    yield lab
    restore_inventory(saved)
    assert invoke("provision", "--prune-clients").returncode == 0


def field(number: int, value: str) -> bytes:
    data = value.encode()
    return bytes([number << 3 | 2, len(data)]) + data


def grpc(message: bytes) -> bytes:
    return struct.pack(">BI", 0, len(message)) + message


def call(lab, machine: str, host: str, method: str, body: bytes, buildid: str | None = None,
         certs: str = "/root/own-cert") -> tuple[str, int]:
    """One gRPC call from `machine` with the certificate in `certs` (its own) to `host`'s gateway: the response's
    headers and trailers, and how many bytes of messages came (a streaming call is cut after 4 s)."""
    hdr = f"-H 'buildkit-controlapi-buildid: {buildid}' " if buildid else ""
    r = lab.run(machine, f"echo {base64.b64encode(body).decode()} | base64 -d > /tmp/req && "
                         f"curl -sS --http2 --max-time 4 --cacert {certs}/ca.crt "
                         f"--cert {certs}/client.crt --key {certs}/client.key "
                         f"-H 'content-type: application/grpc' -H 'te: trailers' {hdr}--data-binary @/tmp/req "
                         f"-D /tmp/headers -o /tmp/out https://{lab.address(host)}:1234{method}; "
                         f"cat /tmp/headers; echo; echo bytes=$(stat -c %s /tmp/out)", capture=True)
    head, _, size = r.stdout.rpartition("bytes=")
    return head.lower(), int(size.strip() or 0)


def as_operator(lab, host: str, method: str, body: bytes, buildid: str | None = None) -> tuple[str, int]:
    """The same call with the operator's certificate, made on the build host itself, as the operator's probe
    does through SSH (the firewall opens the port to clients only); its key is on the host for the call alone."""
    put_client_files(lab, host, {"ca.crt": (PKI / "ca.crt").read_bytes(),
                                 "client.crt": (PKI / "operator/client.crt").read_bytes(),
                                 "client.key": (PKI / "operator/client.key").read_bytes()}, where="/dev/shm/op")
    try:
        return call(lab, host, host, method, body, buildid, certs="/dev/shm/op")
    finally:
        lab.run(host, "rm -rf /dev/shm/op", capture=True)


def with_role(name: str, role: str) -> None:
    data = yaml.safe_load(INV.read_text())
    data["all"]["children"]["clients"]["hosts"][name]["role"] = role
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    r = invoke("provision")
    assert r.returncode == 0 and "in force in place" in r.stderr, r.stderr[-2000:]


def denied(headers: str) -> bool:
    return "grpc-status: 7" in headers


def gateway_log(lab, host: str, since: float) -> str:
    return lab.run(host, f"docker logs --since {since:.0f} buildkit-gateway 2>&1", capture=True).stdout


def test_another_client_can_neither_watch_nor_steer_a_build_nor_use_its_session(clients):
    lab = clients
    lab.run("laptop", "rm -f /root/slow.json /root/slow.log", capture=True)
    t0 = time.time() - 1
    subprocess.run(["docker", "exec", "-d", lab.container("laptop"), "sh", "-c",
                    f"docker buildx build --builder buildkit-ops --progress plain --build-arg N={time.time_ns()} "
                    f"--metadata-file /root/slow.json /root/slow > /root/slow.log 2>&1; echo rc=$? >> /root/slow.log"],
                   check=True)
    # the ref, as buildx writes it once the build is done, is known from the start to the gateway that took it
    started = wait_for(lambda: next(((h, m.group(1)) for h in ("build1", "build2") for m in
                                     [re.search(r"solve started client=laptop ref=(\S+)", gateway_log(lab, h, t0))] if m),
                                    None), timeout=60, what="laptop's build to start")
    host = started[0]
    wait_for(lambda: "sleep 60" in lab.run("laptop", "cat /root/slow.log", capture=True).stdout, timeout=60,
             what="laptop's build to reach its long step")
    # laptop's ref and session, from the gateway's own record of its Solve's start
    ref, session = re.findall(r"solve started client=laptop ref=(\S+) session=(\S+)", gateway_log(lab, host, t0))[-1]
    status = grpc(field(1, ref))
    # laptop2, given laptop's ref: refused, naming laptop2 and what it asked for
    for method, body, buildid, verb in ((STATUS, status, None, "watch"), (PING, grpc(b""), ref, "steer")):
        headers, _ = call(lab, "laptop2", host, method, body, buildid)
        assert denied(headers) and f"laptop2 may not {verb} build {ref}: it is another client's" in headers, headers
        # the control: laptop's own same call passes (its Status streams the build's progress)
        headers, size = call(lab, "laptop", host, method, body, buildid)
        assert not denied(headers) and headers.startswith("http/2 200") and size > 0, (headers, size)
    # laptop2 starts a build naming laptop's session: refused before buildkitd reads a file of it
    new_ref = secrets.token_hex(12)
    headers, _ = call(lab, "laptop2", host, SOLVE, grpc(field(1, new_ref) + field(5, session)))
    assert denied(headers) and f"laptop2 may not use session {session}: it is another client's" in headers, headers
    histories = lab.run(host, "docker exec buildkitd buildctl debug histories --format '{{.Record.Ref}}'",
                        capture=True).stdout
    assert new_ref not in histories and f"ref={new_ref}" not in gateway_log(lab, host, t0)
    # the control: laptop's own Solve naming its session passes the gateway and reaches buildkitd, which answers
    # for itself (a frontend it does not have: an error of its own at once, no build left behind)
    own_ref = secrets.token_hex(12)
    headers, _ = call(lab, "laptop", host, SOLVE, grpc(field(1, own_ref) + field(5, session) + field(6, "none.v0")))
    assert not denied(headers) and "grpc-status:" in headers, headers
    assert f"solve started client=laptop ref={own_ref} session={session}" in gateway_log(lab, host, t0)
    # laptop2 made an admin (in place) may watch laptop's build, still not steer it; the operator may do both
    with_role("laptop2", "admin")
    headers, size = call(lab, "laptop2", host, STATUS, status)
    assert not denied(headers) and headers.startswith("http/2 200") and size > 0, (headers, size)
    headers, _ = call(lab, "laptop2", host, PING, grpc(b""), ref)
    assert denied(headers) and f"laptop2 may not steer build {ref}: it is another client's" in headers, headers
    for method, body, buildid in ((STATUS, status, None), (PING, grpc(b""), ref)):
        headers, size = as_operator(lab, host, method, body, buildid)
        assert not denied(headers) and headers.startswith("http/2 200") and size > 0, (headers, size)
    # laptop's build ends well, and buildx's record names the ref the gateway bound to laptop
    done = wait_for(lambda: re.search(r"rc=(\d+)", lab.run("laptop", "cat /root/slow.log", capture=True).stdout),
                    timeout=120, what="laptop's build to end")
    assert done.group(1) == "0", lab.run("laptop", "tail -30 /root/slow.log", capture=True).stdout
    meta = json.loads(lab.run("laptop", "cat /root/slow.json", capture=True).stdout)
    assert meta["buildx.build.ref"].rsplit("/", 1)[1] == ref

