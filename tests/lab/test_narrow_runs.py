"""A narrow change stays narrow: with a GC change pending on build1, add-client laptop2 changes who may build
(the firewall, the gateway's maps and CRL) and laptop2's builder, says the GC change is pending, and leaves
buildkitd alone, and the gateway unreloaded; provision then applies it. remove-client leaves nothing of laptop2 on
its machine, and puts the new CRL in force on build1's gateway in place (the runtime API), without a reload."""
from __future__ import annotations

import pytest
import yaml
from helpers import INV, LAB, gateway_loads, invoke, restore_inventory

pytestmark = pytest.mark.lab

B1 = LAB.address("build1")


@pytest.fixture(scope="module")
def served(lab):
    saved = INV.read_text()
    assert invoke("provision").returncode == 0
    yield lab
    restore_inventory(saved)
    assert invoke("provision").returncode == 0


def on_build1(lab, cmd: str) -> str:
    return lab.run("build1", cmd, capture=True).stdout.strip()


def test_add_client_with_a_gc_change_pending_touches_access_only_and_says_so(served):
    lab = served
    started = on_build1(lab, "docker inspect -f '{{.State.StartedAt}}' buildkitd")
    toml = on_build1(lab, "sha256sum /opt/buildkit-ops/buildkitd.toml")
    data = yaml.safe_load(INV.read_text())
    data["all"]["children"]["buildhosts"]["hosts"]["build1"].setdefault("buildkit", {})["max_parallelism"] = 3
    INV.write_text(yaml.safe_dump(data, sort_keys=False))                 # the pending change (an operator's edit)
    assert lab.run("laptop2", f"nc -z -w3 {B1} 1234", capture=True).returncode != 0   # (not a client yet)

    loads = gateway_loads(lab)
    r = invoke("add-client", "laptop2", "--address", LAB.address("laptop2"))
    assert r.returncode == 0, r.stderr
    assert gateway_loads(lab) == loads                                                  # no reload: nothing for it
    assert "pending: build1: buildkitd: buildkitd.toml  content: run `invoke provision --host build1`" in r.stderr, \
        r.stderr
    assert on_build1(lab, "docker inspect -f '{{.State.StartedAt}}' buildkitd") == started     # not restarted
    assert on_build1(lab, "sha256sum /opt/buildkit-ops/buildkitd.toml") == toml                # not written
    assert lab.run("laptop2", f"nc -z -w3 {B1} 1234", capture=True).returncode == 0            # the firewall too
    # its builder (verified by add-client with a build through build1's gateway, which accepts its certificate)
    assert lab.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).returncode == 0

    r = invoke("provision", "--host", "build1")                         # the operator applies it, when they choose
    assert r.returncode == 0 and "buildkitd.toml" in r.stderr and "recreate buildkitd (handler)" in r.stderr, r.stderr
    assert on_build1(lab, "docker inspect -f '{{.State.StartedAt}}' buildkitd") != started
    assert "max-parallelism = 3" in on_build1(lab, "cat /opt/buildkit-ops/buildkitd.toml")
    assert "no changes" in invoke("provision", "--host", "build1").stderr


def test_remove_client_leaves_nothing_of_it_on_its_machine(served):
    lab = served
    if "  laptop2:" not in INV.read_text():
        assert invoke("add-client", "laptop2", "--address", LAB.address("laptop2")).returncode == 0
    crl = "echo 'show ssl crl-file /usr/local/etc/haproxy/crl.pem:1' | socat stdio /run/buildkit-ops/gateway-admin.sock"
    revoked = on_build1(lab, crl).count("Serial Number:")
    loads = gateway_loads(lab)
    r = invoke("remove-client", "laptop2")
    assert r.returncode == 0, r.stderr
    # the CRL that revokes laptop2 is in force in build1's running gateway, which was not reloaded for it
    assert on_build1(lab, crl).count("Serial Number:") > revoked and gateway_loads(lab) == loads
    builders = lab.run("laptop2", "docker buildx ls", capture=True).stdout
    containers = lab.run("laptop2", "docker ps -a --format '{{.Names}}'", capture=True).stdout
    files = lab.run("laptop2", "ls -A /root/.docker/buildkit-ops", capture=True).stdout
    assert "buildkit-ops" not in builders and "default" in builders, builders      # (the listing is real)
    assert "buildkit-ops-proxy" not in containers, containers
    assert "buildkit-ops" not in files.split(), files                              # its certificates' folder
    assert lab.run("laptop2", f"nc -z -w3 {B1} 1234", capture=True).returncode != 0
