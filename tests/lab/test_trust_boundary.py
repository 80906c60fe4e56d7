"""The trust boundary on the lab: build steps cannot reach the build host, the firewall holds over IPv6 and
against rules of others, key material never shows, and refused input changes nothing on any host."""
from __future__ import annotations

import base64
import hashlib
import re
import shutil

import pytest
from helpers import (
    INV,
    ROOT,
    inventory_variant,
    invoke,
    invoke_json,
    let_in,
    restore_inventory,
    wait_for,
    wait_until_proxy_sends_home,
)

pytestmark = pytest.mark.lab

B1, B1_V6 = "10.77.0.11", "fd00:10:77::11"
SOCK = "unix:///run/buildkit/buildkitd.sock"
METADATA = "169.254.169.254"
PROBE = """FROM {reg}/lab/busybox:latest
ARG NONCE
RUN echo "$NONCE"; for t in {targets}; do \\
      if busybox nc -w 3 ${{t%:*}} ${{t#*:}} </dev/null >/dev/null 2>&1; then echo "PROBE $t open"; \\
      else echo "PROBE $t closed"; fi; done; \\
    printf 'GET /f.txt HTTP/1.0\\r\\n\\r\\n' | busybox nc -w 5 10.77.0.31 8080 | tail -1 | sed 's/^/DOWNLOAD /'
"""
TARGETS = ["127.0.0.1:6060", "127.0.0.1:22", f"{B1}:22", f"{B1}:1234", "10.10.0.1:22", f"{METADATA}:80",
           "10.77.0.5:5000", "10.77.0.31:8080"]


@pytest.fixture(scope="module")
def reg(lab):
    return lab.status()["registry"]


@pytest.fixture(scope="module")
def fleet(lab, reg):
    """build1 and build2 provisioned from the shipped inventory, laptop a client logged in to the registry,
    intruder serving a file on the lab network; everything put back afterwards."""
    saved = INV.read_text()
    r = invoke("provision")
    assert r.returncode == 0, r.stderr
    r = invoke("add-client", "laptop")
    assert r.returncode == 0, r.stderr
    r = lab.run("laptop", f"docker login -u {reg['username']} --password-stdin {reg['address']}", capture=True,
                input=reg["password"])
    assert r.returncode == 0, r.stderr
    lab.run("intruder", "mkdir -p /srv/www && echo lab-file-ok > /srv/www/f.txt && cd /srv/www && "
                        "(setsid python3 -m http.server 8080 >/dev/null 2>&1 & echo $! > /tmp/www.pid)", capture=True)
    yield lab
    lab.run("intruder", "kill $(cat /tmp/www.pid)", capture=True)
    restore_inventory(saved)
    r = invoke("provision", "--prune-clients")
    assert r.returncode == 0, r.stderr


def probe(lab, reg) -> dict[str, str]:
    """Run the probe as a RUN step from laptop through its builder (build1 first): target -> open/closed."""
    import secrets
    df = PROBE.format(reg=reg["address"], targets=" ".join(TARGETS))
    lab.run("laptop", "mkdir -p /root/probe && cat > /root/probe/Dockerfile", capture=True, input=df)
    r = lab.run("laptop", f"docker buildx build --builder buildkit-ops --progress plain "
                          f"--build-arg NONCE={secrets.token_hex(8)} /root/probe", capture=True)
    assert r.returncode == 0, r.stderr[-3000:]
    found = dict(re.findall(r"PROBE (\S+) (open|closed)", r.stderr))
    found["download"] = " ".join(re.findall(r"DOWNLOAD (.*)", r.stderr))
    return found


def on_build1(lab, cmd: str) -> str:
    r = lab.run("build1", cmd, capture=True)
    return r.stdout + r.stderr


def test_build_steps_cannot_reach_the_build_host_but_reach_the_network(fleet, reg):
    # the debug listener on, so that there is something on 127.0.0.1:6060 to reach
    inv = inventory_variant("debug", lambda d: d["all"]["vars"]["buildkit"].update(debug_address="127.0.0.1:6060"))
    r = invoke("provision", "--host", "build1", "-i", inv)
    assert r.returncode == 0, r.stderr
    # a metadata service on build1 itself, at the address clouds use
    on_build1(fleet, f"ip addr add {METADATA}/32 dev lo; mkdir -p /srv/md && echo metadata-secret > /srv/md/x && "
                     f"cd /srv/md && (setsid python3 -m http.server 80 --bind {METADATA} >/dev/null 2>&1 & "
                     f"echo $! > /tmp/md.pid)")
    try:
        # everything answers on build1 itself: the probe below would see it if the sandbox leaked
        wait_for(lambda: "metadata-secret" in on_build1(fleet, f"curl -s -m 3 http://{METADATA}/x"),
                 what="the metadata listener on build1")
        assert "# TYPE go_" in on_build1(fleet, "curl -s -m 3 http://127.0.0.1:6060/metrics | head -50")
        assert "SSH-2.0" in on_build1(fleet, "echo | nc -w 3 127.0.0.1 22 | head -1")
        wait_until_proxy_sends_home(fleet)   # (build1 was just restarted: the probe must run there)
        got = probe(fleet, reg)
    finally:
        on_build1(fleet, f"kill $(cat /tmp/md.pid); ip addr del {METADATA}/32 dev lo")
    assert {t: got.get(t) for t in TARGETS} == {
        "127.0.0.1:6060": "closed", "127.0.0.1:22": "closed", f"{B1}:22": "closed", f"{B1}:1234": "closed",
        "10.10.0.1:22": "closed", f"{METADATA}:80": "closed",  # the host, its bridge address, the metadata range
        "10.77.0.5:5000": "open", "10.77.0.31:8080": "open"}     # the registry and the lab network
    assert "lab-file-ok" in got["download"]
    workers = on_build1(fleet, f"docker exec buildkitd buildctl --addr {SOCK} debug workers -v")
    assert re.search(r"worker\.network:\s+cni", workers), workers
    rc, doc, err = invoke_json("status", "--host", "build1")
    assert doc["hosts"]["build1"]["buildkitd"]["step_network"] == "cni"


def test_host_networking_is_an_explicit_opt_in_and_then_reaches_the_host(fleet, reg):
    """The control: the same probe with step_network: host reaches build1's SSH (so the probe can see a leak)."""
    inv = inventory_variant("hostnet", lambda d: d["all"]["vars"]["buildkit"].update(step_network="host"))
    r = invoke("provision", "--host", "build1", "-i", inv)
    assert r.returncode == 0, r.stderr
    try:
        wait_until_proxy_sends_home(fleet)   # (build1 was just restarted: the probe must run there)
        got = probe(fleet, reg)
        assert got[f"{B1}:22"] == "open" and got["127.0.0.1:22"] == "open"
        r = invoke("status", "--host", "build1", "-i", inv)
        assert "build steps on network: host" in r.stderr
        assert "build steps share the host's network" in r.stderr
    finally:
        r = invoke("provision", "--host", "build1")
        assert r.returncode == 0, r.stderr
    wait_until_proxy_sends_home(fleet)
    assert probe(fleet, reg)[f"{B1}:22"] == "closed"


def v6_open(lab, machine: str, port: int) -> bool:
    return lab.run(machine, f"nc -6 -z -w 3 {B1_V6} {port}", capture=True).returncode == 0


def test_the_buildkit_port_is_closed_over_ipv6_too(fleet):
    assert not v6_open(fleet, "intruder", 1234)
    assert v6_open(fleet, "intruder", 22)  # filtered, not broken: SSH is allowed over IPv6 as over IPv4
    # ufw told not to manage IPv6 (it then drops all of it, rules or not): status fails, provision puts it back
    on_build1(fleet, "sed -i 's/^IPV6=.*/IPV6=no/' /etc/default/ufw && ufw disable >/dev/null && "
                     "ufw --force enable >/dev/null")
    assert not v6_open(fleet, "intruder", 22)  # ufw now drops all IPv6 blindly, our SSH rule included
    r = invoke("status", "--host", "build1")
    assert r.returncode == 1 and "ufw does not filter IPv6" in r.stderr and "IPv4 ONLY" in r.stderr
    rc, doc, err = invoke_json("provision", "--host", "build1")
    assert rc == 0, err
    step = next(s for s in doc["hosts"]["build1"]["steps"] if s["name"] == "IPv6 filtered too")
    assert step["status"] == "changed" and step["detail"] == "IPV6=no -> yes"
    assert not v6_open(fleet, "intruder", 1234)
    assert v6_open(fleet, "intruder", 22)
    assert invoke("status", "--host", "build1").returncode == 0


def intruder_reaches(lab) -> bool:
    return lab.run("intruder", f"nc -z -w 3 {B1} 1234", capture=True).returncode == 0


def host_digest(lab, machine: str = "build1") -> str:
    """What provision manages on a host: its files, firewall rules and container."""
    out = lab.run(machine, "cd /opt/buildkit-ops && find . -type f | sort | xargs sha256sum; stat -c '%a %U' "
                           "tls/server.key; ufw status verbose; ufw show added; cat /etc/default/ufw; "
                           "cat /etc/buildkit-ops/firewall/*; ipset save; iptables -S ufw-before-input; "
                           "docker inspect -f '{{.Id}} {{.State.StartedAt}}' buildkitd; "
                           "ls /etc/systemd/system | grep buildkit", capture=True).stdout
    return hashlib.sha256(out.encode()).hexdigest()


def test_a_rule_of_someone_else_that_opens_the_port_fails_provision_and_status(fleet):
    on_build1(fleet, "ufw allow 1234/tcp >/dev/null")
    assert intruder_reaches(fleet)  # what such a rule does
    before = host_digest(fleet)
    r = invoke("provision", "--host", "build1")
    assert r.returncode == 1
    assert "rules not made by buildkit-ops open port 1234/tcp beyond the clients: ufw allow 1234/tcp" in r.stderr
    assert "--prune-clients" in r.stderr and "Traceback" not in r.stderr
    assert host_digest(fleet) == before
    r = invoke("status", "--host", "build1")
    assert r.returncode == 1 and "ufw allow 1234/tcp" in r.stderr
    rc, doc, err = invoke_json("provision", "--host", "build1", "--prune-clients")
    assert rc == 0, err
    assert "ufw allow 1234/tcp" not in on_build1(fleet, "ufw show added")
    assert not intruder_reaches(fleet)
    assert "laptop 10.77.0.21" in let_in(fleet)


def test_a_client_that_moves_through_add_client_has_its_old_address_closed(fleet):
    r = invoke("add-client", "laptop2", "--address", "10.77.0.16/29", "--ssh-address", "10.77.0.22")
    assert r.returncode == 0, r.stderr
    assert "laptop2 10.77.0.16/29" in let_in(fleet)
    r = invoke("add-client", "laptop2", "--address", "10.77.0.22")
    assert r.returncode == 0, r.stderr
    assert "address 10.77.0.16/29 -> 10.77.0.22" in r.stderr
    for machine in ("build1", "build2"):
        allowed = let_in(fleet, machine)
        assert "10.77.0.16/29" not in " ".join(allowed)
        assert "laptop2 10.77.0.22" in allowed
    assert "address: 10.77.0.22" in INV.read_text()


def test_check_mode_never_prints_key_material(fleet):
    key = (ROOT / ".pki/hosts/build1/server.key").read_bytes()
    secrets = [key.decode(), base64.b64encode(key).decode()] + re.findall(r"^[A-Za-z0-9+/=]{40,}$",
                                                                         key.decode(), re.M)
    on_build1(fleet, "chmod 644 /opt/buildkit-ops/gateway/server.pem")
    for args in (["--check"], ["--check", "--json"]):
        r = invoke("provision", "--host", "build1", *args)
        assert r.returncode == 0, r.stderr
        out = r.stdout + r.stderr
        assert "gateway/server.pem" in out and "mode 644 root:root" in out
        assert not any(s in out for s in secrets) and "PRIVATE KEY" not in out and "BKOPS_EOF" not in out
    r = invoke("provision", "--host", "build1")
    assert r.returncode == 0 and not any(s in r.stderr for s in secrets)
    assert on_build1(fleet, "stat -c %a /opt/buildkit-ops/gateway/server.pem").strip() == "600"
    assert "no changes" in invoke("provision", "--host", "build1").stderr


def corrupt_pki(d):
    dest = ROOT / ".test-pki-corrupt"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(ROOT / ".pki", dest)
    (dest / "ca.key").write_text("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    d["all"]["vars"]["pki_dir"] = str(dest)


def corrupt_ssh_key(d):
    (ROOT / ".test-inv-bad-key").write_text("not a key\n")
    d["all"]["vars"]["ssh_key"] = ".test-inv-bad-key"


def bk(**kw):
    return lambda d: d["all"]["vars"]["buildkit"].update(kw)


REFUSED = [
    # (what, inventory edit or None, command, exit code, the message's key part)
    ("version with a newline", bk(version="v0.13.2\ninsecure-entitlements = [\"security.insecure\"]"),
     ["provision"], 2, "buildkit.version: 'v0.13.2\\ninsecure-entitlements"),
    ("image with a newline", bk(image="buildkit-ops/buildkit:v0.13.2\n    pid: host"),
     ["provision"], 2, "buildkit.image: 'buildkit-ops/buildkit:v0.13.2\\n    pid: host' is not an image reference"),
    ("a missing ssh_key", lambda d: d["all"]["vars"].update(ssh_key="no-such-key"),
     ["provision"], 2, "all.children.buildhosts.hosts.build1.ssh_key: "),
    ("an ssh_key that is no key", corrupt_ssh_key, ["provision"], 1,
     f"ssh_key {ROOT}/.test-inv-bad-key cannot be used (not a private key that can be read)"),
    ("pki_dir is a file", lambda d: d["all"]["vars"].update(pki_dir="inventory.yml"),
     ["provision"], 2, "all.vars.pki_dir: "),
    ("a corrupt CA key", corrupt_pki, ["provision"], 1, "ca.key: not a valid PEM private key"),
    ("a missing image archive", bk(image_archive="no-such.tar"),
     ["provision"], 2, "buildkit.image_archive: "),
    ("a missing registry CA", bk(registries={"10.77.0.5:5000": {"ca": "no-such-ca.crt"}}),
     ["provision"], 2, "buildkit.registries.10.77.0.5:5000.ca: "),
    ("a builder name that walks out", lambda d: d["all"]["children"]["clients"]["hosts"]["laptop"].update(
        builder="../../x"), ["add-client", "laptop"], 2, "builder: '../../x' is not a buildx builder name"),
    ("a client address with a command", None, ["add-client", "evil", "--address", "fe80::1%eth0;reboot"], 1,
     "'fe80::1%eth0;reboot' is not an IP address or network"),
    ("a host that does not exist", None, ["provision", "--host", "build1;id"], 2, "no build host or group named"),
    ("a prune filter with a command", None, ["cache-prune", "--filter", "type==x;reboot"], 2,
     "--filter: 'type==x;reboot' is not a BuildKit filter"),
]


@pytest.mark.parametrize("what,edit,args,code,message", REFUSED, ids=[c[0] for c in REFUSED])
def test_refused_input_changes_nothing_on_any_host(fleet, what, edit, args, code, message):
    before = {m: host_digest(fleet, m) for m in ("build1", "build2")}
    inv_before = INV.read_text()
    extra = ["-i", inventory_variant("refused", edit)] if edit else []
    r = invoke(*args, *extra)
    shutil.rmtree(ROOT / ".test-pki-corrupt", ignore_errors=True)
    (ROOT / ".test-inv-bad-key").unlink(missing_ok=True)
    assert r.returncode == code, r.stderr
    assert message in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and "Exception" not in r.stderr, r.stderr
    assert {m: host_digest(fleet, m) for m in ("build1", "build2")} == before
    assert INV.read_text() == inv_before


def test_link_local_traffic_never_leaves_the_lab(fleet):
    """The lab's bridge drops 169.254.0.0/16 on its way into this machine (which may serve it itself)."""
    import subprocess
    bridge = fleet.bridge
    for chain in ("DOCKER-USER", "INPUT"):
        rule = [chain, "-i", bridge, "-d", "169.254.0.0/16", "-j", "DROP"]
        assert subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode == 0, chain

    def dropped() -> int:
        out = subprocess.run(["iptables", "-L", "DOCKER-USER", "-v", "-x", "-n"], capture_output=True,
                             text=True).stdout
        return sum(int(l.split()[0]) for l in out.splitlines() if "169.254.0.0/16" in l)
    before = dropped()
    assert fleet.run("laptop", f"nc -z -w 2 {METADATA} 80", capture=True).returncode != 0
    assert dropped() > before
