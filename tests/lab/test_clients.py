"""`invoke add-client` end to end: developer machines build and push through the server with their own
registry login, share one cache, and the credentials never land on the server."""
from __future__ import annotations

import base64
import json
import re

import pytest
from helpers import (
    INV,
    ROOT,
    build,
    inventory_variant,
    invoke,
    invoke_json,
    let_in,
    login,
    restore_inventory,
    write_project,
)

from lab.buildx_progress import step_states

pytestmark = pytest.mark.lab

B1 = "10.77.0.11"
@pytest.fixture(scope="module")
def reg(lab):
    return lab.status()["registry"]


@pytest.fixture(scope="module")
def servers(lab):
    """build1 and build2 provisioned from the shipped inventory; the inventory restored afterwards."""
    saved = INV.read_text()
    r = invoke("provision")
    assert r.returncode == 0, r.stderr
    yield lab
    restore_inventory(saved)




def test_add_client_sets_up_a_remote_builder_with_a_node_per_host(servers):
    r = invoke("add-client", "laptop")
    assert r.returncode == 0, r.stderr
    assert "verify" in r.stderr and "running" in r.stderr
    out = servers.run("laptop", "docker buildx inspect buildkit-ops; ls -l /root/.docker/buildkit-ops/buildkit-ops",
                      capture=True).stdout
    assert "Driver:        remote" in out or re.search(r"Driver:\s+remote", out)
    # laptop has `failover: proxy`: its nodes are its proxy's listeners, which forward to build1 and build2
    assert "tcp://127.0.0.1:12340" in out and "tcp://127.0.0.1:12341" in out
    assert re.search(r"-rw------- .* key\.pem", out)
    # (the proxy image has no shell: `docker cp ... -` gives a tar stream, which holds the file as it is)
    cfg = servers.run("laptop", "docker cp buildkit-ops-proxy-buildkit-ops:/usr/local/etc/haproxy/haproxy.cfg -",
                      capture=True).stdout
    assert f"server build1 {B1}:1234" in cfg and "server build2 10.77.0.12:1234" in cfg


def test_add_client_twice_changes_nothing(servers):
    r = invoke("add-client", "laptop")
    assert r.returncode == 0, r.stderr
    assert "changed=0" in r.stderr and "no changes" in r.stderr


def test_build_and_push_through_build1_then_everything_cached(servers, reg):
    login(servers, "laptop", reg)
    write_project(servers, "laptop", reg)
    tag = f"{reg['address']}/team/app:1"
    first = build(servers, "laptop", tag)
    assert first.returncode == 0, first.stderr[-3000:]
    r = servers.run("laptop", f"curl -sf --cacert /etc/docker/certs.d/{reg['address']}/ca.crt "
                              f"-u {reg['username']}:$(cat) https://{reg['address']}/v2/team/app/tags/list",
                    capture=True, input=reg["password"])
    assert "1" in json.loads(r.stdout)["tags"], r.stdout + r.stderr
    again = build(servers, "laptop", tag)
    assert again.returncode == 0, again.stderr[-3000:]
    states = step_states(again.stderr)
    assert len(states) == 3 and set(states.values()) == {"CACHED"}, states


def test_second_client_gets_cached_steps_from_the_shared_cache(servers, reg):
    r = invoke("add-client", "laptop2", "--address", "10.77.0.22", "--default")
    assert r.returncode == 0, r.stderr
    assert ("laptop2:\n          address: 10.77.0.22\n          default_builder: true"
            in INV.read_text())
    login(servers, "laptop2", reg)
    write_project(servers, "laptop2", reg)
    # --default made it laptop2's default builder: a plain `docker buildx build` goes to the server
    r = servers.run("laptop2", f"docker buildx build --progress plain -t {reg['address']}/team/app:2 --push "
                               f"/root/proj", capture=True)
    assert r.returncode == 0, r.stderr[-3000:]
    states = step_states(r.stderr)
    assert len(states) == 3 and set(states.values()) == {"CACHED"}, states


def test_push_without_a_registry_login_is_refused(servers, reg):
    servers.run("laptop2", f"docker logout {reg['address']}", capture=True)
    servers.run("laptop2", "mkdir -p /root/anon && printf 'FROM scratch\\nCOPY a.txt /\\n' > /root/anon/Dockerfile "
                           "&& echo a > /root/anon/a.txt", capture=True)
    r = build(servers, "laptop2", f"{reg['address']}/team/anon:1", where="/root/anon")
    assert r.returncode != 0
    assert re.search(r"401 Unauthorized|authorization failed|no basic auth credentials", r.stderr), r.stderr[-2000:]


def test_registry_password_is_nowhere_on_build1(servers, reg):
    pw = reg["password"]
    needles = [pw, base64.b64encode(pw.encode()).decode(),
               base64.b64encode(f"{reg['username']}:{pw}".encode()).decode()]
    args = " ".join(f"-e '{n}'" for n in needles)
    r = servers.run("build1", f"grep -rlF {args} /etc /opt /root /home /tmp /var /run 2>/dev/null; "
                              f"docker logs buildkitd 2>&1 | grep -cF {args}; "
                              f"docker exec buildkitd sh -c 'cat /proc/1/environ' | grep -cF {args}; true",
                    capture=True)
    assert r.stdout.split() == ["0", "0"], r.stdout


def test_list_clients_shows_certificates(servers):
    r = invoke("list-clients", "--json")
    rows = {x["name"]: x for x in json.loads(r.stdout) if not x["status"].startswith("revoked")}
    assert rows["laptop"]["status"] == "ok" and rows["laptop2"]["address"] == "10.77.0.22"
    assert rows["laptop"]["cert_expires"]


def test_provision_never_drops_a_client_by_accident(servers):
    inv = inventory_variant("noclients", lambda d: d["all"]["children"]["clients"].update(hosts={}))
    rc, doc, err = invoke_json("provision", "--host", "build1", "-i", inv)
    assert rc == 0, err
    assert "rule for laptop (10.77.0.21) kept" in err and "invoke remove-client laptop" in err
    assert not doc["changed"]
    assert "laptop 10.77.0.21" in let_in(servers)
    assert servers.run("laptop", f"nc -z -w3 {B1} 1234", capture=True).returncode == 0


def test_remove_client_closes_the_port(servers):
    assert servers.run("laptop2", f"nc -z -w3 {B1} 1234", capture=True).returncode == 0
    r = invoke("remove-client", "laptop2")
    assert r.returncode == 0, r.stderr
    # (one certificate, or more when an earlier module issued laptop2 one too: every one is revoked)
    assert re.search(r"(is|are) on the CRL: every build host's gateway refuses it", r.stderr), r.stderr
    assert servers.run("laptop2", f"nc -z -w3 {B1} 1234", capture=True).returncode != 0
    assert servers.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).returncode != 0
    assert servers.run("laptop2", "test -e /root/.docker/buildkit-ops/buildkit-ops").returncode != 0   # its files
    assert "laptop2:" not in INV.read_text()
    assert "revoked" in invoke("list-clients", "--all").stdout
    shown = invoke("list-clients")      # (removals only behind --all: the list stays the team's)
    assert "revoked" not in shown.stdout and "not shown: `invoke list-clients --all`" in shown.stderr
    # laptop is untouched
    assert servers.run("laptop", f"nc -z -w3 {B1} 1234", capture=True).returncode == 0


def test_remove_client_whose_machine_is_gone(servers):
    from buildkit_ops.inventory import edit as inventory_edit
    inventory_edit.add_client(INV, "ghost2", {"address": "10.77.0.97", "connect_timeout": 2})
    r = invoke("remove-client", "ghost2")
    assert r.returncode == 0, r.stderr
    assert "skipped" in r.stderr and "docker buildx rm buildkit-ops" in r.stderr
    assert "ghost2     : ok=2 changed=1 unreachable=0 failed=0 skipped=1" in r.stderr, r.stderr
    assert "stays valid" not in r.stderr  # it never had a certificate
    assert "ghost2:" not in INV.read_text()


@pytest.mark.parametrize("args,message", [
    (["nobody"], "no client named 'nobody'"),
    (["laptop", "--address", "fe80::1%eth0;reboot"], "--address: 'fe80::1%eth0;reboot' is not an IP address or "
                                                      "network (no names, no zone ids)"),
    (["bad", "--address", "10.0.0.300.1"], "'10.0.0.300.1' is not an IP address or network (no names, no zone ids): "
                                           "the firewall opens the port"),
    (["bad", "--address", "0.0.0.0/0"], "'0.0.0.0/0' is every address: the port would be open to the whole internet"),
    (["bad", "--address", "10.77.0.40", "--builder", "../../x"], "'../../x' is not a buildx builder name"),
    (["bad", "--address", "10.77.0.40", "--ssh-port", "22;id"], "--ssh-port: '22;id' is not a port"),
    (["bad", "--address", "10.77.0.40", "--ssh-user", "root -oProxyCommand=x"], "is not a user name"),
    (["bad", "--address", "10.77.0.40", "--connection", "telnet"], "'telnet' is not allowed"),
    (["bad", "--address", "dev.example.com"], "'dev.example.com' is not an IP address"),
    (["twin", "--address", "10.77.0.21"], "10.77.0.21 is already the address of client 'laptop'"),
])
def test_bad_input_is_refused_and_changes_nothing(servers, args, message):
    before = INV.read_text()
    r = invoke("add-client", *args)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert INV.read_text() == before


def test_unreachable_client_gets_nothing(servers):
    before = INV.read_text()
    r = invoke("add-client", "ghost", "--address", "10.77.0.98", "--ssh-key", ".lab/ssh/id_ed25519")
    assert r.returncode == 1
    assert "cannot reach ghost" in r.stderr and "nothing was changed" in r.stderr
    assert INV.read_text() == before
    assert not (ROOT / ".pki/clients/ghost").exists()
    assert "10.77.0.98" not in " ".join(let_in(servers))


def test_buildkitd_default_toml_trap_is_detected(servers):
    servers.run("laptop2", "mkdir -p /root/.docker/buildx && echo 'debug = true' > "
                           "/root/.docker/buildx/buildkitd.default.toml", capture=True)
    try:
        r = invoke("add-client", "laptop2", "--address", "10.77.0.22")
    finally:
        servers.run("laptop2", "rm -f /root/.docker/buildx/buildkitd.default.toml", capture=True)
    assert r.returncode == 1
    assert "buildkitd.default.toml exists" in r.stderr and "mv /root/.docker/buildx/buildkitd.default.toml" in r.stderr
    assert "laptop2:" not in INV.read_text()


def test_the_operator_machine_as_a_local_client(servers, reg):
    # this machine reaches build1 from the lab bridge's gateway address
    r = invoke("add-client", "operator", "--address", "10.77.0.1", "--connection", "local",
               "--builder", "bkops-test")
    assert r.returncode == 0, r.stderr
    import subprocess
    out = subprocess.run(["docker", "buildx", "inspect", "bkops-test"], capture_output=True, text=True).stdout
    assert f"tcp://{B1}:1234" in out
    r = invoke("remove-client", "operator")
    assert r.returncode == 0, r.stderr
    assert subprocess.run(["docker", "buildx", "inspect", "bkops-test"], capture_output=True).returncode != 0


def test_demo_runs_the_whole_story(servers, reg):
    r = invoke("demo")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Done in" in r.stderr and f"{reg['address']}/demo/hello:latest" in r.stderr
    out = servers.run("laptop", f"docker pull -q {reg['address']}/demo/hello:latest && "
                                f"docker run --rm {reg['address']}/demo/hello:latest", capture=True)
    assert "built on the shared BuildKit server" in out.stdout and "hello from buildkit-ops" in out.stdout, out
