"""A host provisioned by the version before the gateway (buildkitd itself on TCP with mutual TLS, the conntrack
connection log) converges with one `provision` of this version: its cache volume kept, the clients' builders
working on as they are (same port, same CA, same server names: no add-client), and a second run changes
nothing. A CI runner's secrets are a client certificate and the CA, as laptop's are: they stay valid alike."""
from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import (
    FLEET,
    INV,
    ROOT,
    invoke,
    login,
    put_client_files,
    restore_inventory,
    wait_until_proxy_sends_home,
    write_project,
)

from lab.buildx_progress import step_states

pytestmark = pytest.mark.lab

# the last version that landed before the gateway
PRE_GATEWAY = "246f5e2"


@pytest.fixture(scope="module")
def pre_gateway(lab, tmp_path_factory):
    """That version's checkout and inventory (the lab's, as it was then: same PKI folder, same machines)."""
    d = tmp_path_factory.mktemp("pre-gateway")
    tree = subprocess.run(["git", "-C", str(ROOT), "archive", PRE_GATEWAY], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(d)], input=tree, check=True)
    inv = ROOT / ".test-inv-pre-gateway.yml"
    inv.write_text((d / "inventory.yml").read_text())
    saved = INV.read_text()
    yield d, inv
    restore_inventory(saved)


def old_invoke(checkout, *args: str) -> subprocess.CompletedProcess:
    """The old version's own tasks (its package first on the path: the checkout is the working directory)."""
    return subprocess.run([sys.executable, "-m", "invoke", *args], cwd=checkout, capture_output=True, text=True)


def build_through_laptops_proxy(lab) -> subprocess.CompletedProcess:
    """What laptop's builder does for its build2 node: its failover proxy's port for build2, the fleet's server
    name, laptop's certificate (the files add-client gave it)."""
    wait_until_proxy_sends_home(lab, host="build2")   # (it marks a host that was down up after two checks)
    d = "/root/bk-up"
    return lab.run("laptop", f"timeout 120 buildctl --addr tcp://127.0.0.1:12341 --tlsservername {FLEET} "
                             f"--tlscacert {d}/ca.crt --tlscert {d}/client.crt --tlskey {d}/client.key --debug "
                             f"build --progress plain --frontend dockerfile.v0 --local context=/root/proj "
                             f"--local dockerfile=/root/proj", capture=True)


def test_a_host_of_the_version_before_the_gateway_converges_with_one_provision(lab, reg, pre_gateway):
    checkout, old_inv = pre_gateway
    assert invoke("provision").returncode == 0      # (add-client changes access only: the hosts serve first)
    r = invoke("add-client", "laptop")
    assert r.returncode == 0, r.stderr
    login(lab, "laptop", reg)
    write_project(lab, "laptop", reg)
    pki = ROOT / ".pki"
    put_client_files(lab, "laptop", {"ca.crt": (pki / "ca.crt").read_bytes(),
                                     "client.crt": (pki / "clients/laptop/client.crt").read_bytes(),
                                     "client.key": (pki / "clients/laptop/client.key").read_bytes()},
                     where="/root/bk-up")

    # build2 as the old version left it: buildkitd on the port, the connection log, a cache
    lab.reset("build2")
    r = old_invoke(checkout, "provision", "--host", "build2", "-i", str(old_inv))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "buildkitd" in lab.run("build2", "ss -ltnpH 'sport = :1234'", capture=True).stdout
    assert lab.run("build2", "systemctl is-active buildkit-ops-connections.service").returncode == 0
    first = build_through_laptops_proxy(lab)
    assert first.returncode == 0, first.stderr[-3000:]
    # a mark inside the cache volume (Docker's CreatedAt of a local volume follows its folder's changes)
    marker = "$(docker volume inspect -f '{{.Mountpoint}}' buildkit-cache)/../upgrade-marker"
    assert lab.run("build2", f"touch {marker}").returncode == 0

    r = invoke("provision", "--host", "build2")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "connections: connection log  removed: the gateway's audit trail" in r.stderr, r.stderr
    listeners = lab.run("build2", "ss -ltnpH", capture=True).stdout
    assert "buildkitd" not in listeners and "haproxy" in listeners, listeners
    assert lab.run("build2", "test -e /opt/buildkit-ops/tls/server.key").returncode != 0      # (the gateway's now)
    assert lab.run("build2", "test -e /etc/systemd/system/buildkit-ops-connections.service "
                             "-o -e /var/lib/buildkit-ops/connections.log").returncode != 0
    # the same volume, the same cache: laptop's unchanged files build fully cached through the gateway
    assert lab.run("build2", f"test -e {marker}").returncode == 0
    again = build_through_laptops_proxy(lab)
    assert again.returncode == 0, again.stderr[-3000:]
    states = step_states(again.stderr)
    assert states and set(states.values()) == {"CACHED"}, again.stderr[-3000:]
    # converged: a second run changes nothing
    r = invoke("provision", "--host", "build2")
    assert r.returncode == 0 and "no changes" in r.stderr, r.stderr[-3000:]
