"""The buildkitd role: its files rendered from the inventory (TOML, Compose, the fence's entrypoint) keep their
structure whatever the values, its plan uploads only what differs, loads the image, restarts through its
handler, and refuses what it cannot do (a config for another version)."""
from __future__ import annotations

import copy
import subprocess
import tomllib

import pytest
import yaml
from conftest import ROOT
from unit_helpers import FAKE_PROC, HOST, HOSTILE, SHELL_BREAKOUT, changed, file_facts, run_with_stubs

from buildkit_ops import inventory
from buildkit_ops import inventory as I
from buildkit_ops.engine import render
from buildkit_ops.engine.render import parse_file_states
from buildkit_ops.inventory import buildkit_versions as versions
from buildkit_ops.inventory.daemons import fleet
from buildkit_ops.roles import buildkitd
from buildkit_ops.roles.buildkitd import BuildkitdInput, files

FILES = files.render(HOST)


# ------------------------------------------------------------------ buildkitd
def started_with(files_, image: str) -> str:
    """The label a container started by the handler carries, computed here from its definition (a hash of every
    managed file's path and content, then the image), not by the code under test."""
    import hashlib
    h = hashlib.sha256(b"".join(f.path.encode() + b"\0" + f.content + b"\0" for f in files_) + image.encode())
    return h.hexdigest()[:16]


def converged_facts():
    return {"files": file_facts(FILES), "image": "sha256:abc",
            "container": f"running 2026-01-01T00:00:00Z sha256:abc {started_with(FILES, 'sha256:abc')}"}


def bk_plan(facts):
    """buildkitd's plan from facts as the host prints them (sections), for build1 and its rendered files."""
    return buildkitd.plan(HOST, FILES, buildkitd.parse(facts), parse_file_states(facts.get("files", "")),
                          inp(HOST))


def inp(host, clients=1):
    """The fleet daemon's input, as the image archive's id says (sha256:abc)."""
    return BuildkitdInput(fleet(host), "sha256:abc", clients=clients)


def test_buildkitd_converged_plans_nothing():
    assert changed(bk_plan(converged_facts())) == []


def test_buildkitd_changed_file_is_uploaded_and_notifies_the_handler():
    facts = converged_facts()
    facts["files"] = file_facts(FILES, ("buildkitd.toml", "0" * 64, "644"))
    steps = [s for s in bk_plan(facts) if s.changed]
    assert [(s.name, s.detail, s.notify) for s in steps] == [("buildkitd.toml", "content", ["recreate buildkitd"])]
    assert "mv -f /opt/buildkit-ops/buildkitd.toml.bkops-tmp /opt/buildkit-ops/buildkitd.toml" in steps[0].script


def test_buildkitd_new_image_is_loaded_from_the_archive():
    facts = converged_facts()
    facts["image"] = "sha256:old"
    steps = [s for s in bk_plan(facts) if s.changed]
    assert steps[0].upload == HOST.buildkit.image_archive and steps[0].script == "docker load -q >/dev/null\n"


def test_buildkitd_stopped_container_is_started():
    facts = converged_facts()
    facts["container"] = facts["container"].replace("running", "exited")
    assert changed(bk_plan(facts)) == [("service", "exited: start")]


def test_rendered_config_listens_on_its_unix_socket_only():
    # (that it holds only keys its BuildKit version knows: test_buildkit_versions.py)
    doc = tomllib.loads(next(f for f in FILES if f.path.endswith("buildkitd.toml")).content.decode())
    # no TCP listener at all: the gateway holds the port, and buildkitd is reached through it only
    assert doc["grpc"]["address"] == ["unix:///run/buildkit/buildkitd.sock"]
    assert "tls" not in doc["grpc"] and "debugAddress" not in doc["grpc"]
    compose = yaml.safe_load(FILES[0].content.decode())
    assert "/run/buildkit-ops:/run/buildkit" in compose["services"]["buildkitd"]["volumes"]
    assert not any("/tls" in v for v in compose["services"]["buildkitd"]["volumes"])


def test_compose_privileges_follow_the_inventory():
    h = copy.deepcopy(HOST)
    h.buildkit.privileges = "privileged"
    compose = files.render(h)[0].content.decode()
    assert "privileged: true" in compose and "cap_add" not in compose
    lab = FILES[0].content.decode()
    assert "privileged" not in lab.replace("`privileged`", "") and "cap_drop: [SYS_RESOURCE]" in lab


# ------------------------------------------------------------------ trust boundary: planning
def test_buildkitd_refuses_a_config_for_another_version_than_the_running_one():
    import dataclasses

    from buildkit_ops.roles import buildkitd as bkd
    inv = inventory.load(ROOT / "inventory.yml")
    h = inv.hosts["build1"]
    bkd.check_version(h, "v0.13.2")          # the same minor version: fine
    bkd.check_version(h, None)               # not answering: nothing to compare
    bkd.check_version(h, "v0.0.0+unknown")   # a development build: nothing to compare
    newer = dataclasses.replace(h, buildkit=dataclasses.replace(h.buildkit, version="v0.29.0"))
    with pytest.raises(bkd.WrongVersion, match="build1 runs BuildKit v0.13.2 .* buildkit.version v0.29.0"):
        bkd.check_version(newer, "v0.13.2")


def rendered(host, name):
    return next(f for f in files.render(host) if f.path.endswith(name)).content.decode()


@pytest.mark.parametrize("evil", HOSTILE)
def test_toml_keeps_its_structure_whatever_the_values(host, tmp_path, evil):
    ca = tmp_path / "ca.crt"
    ca.write_text("registry CA")
    bk = host.buildkit
    version = bk.version
    bk.version = evil   # selects the schema: a version the renderer does not know is refused, never written
    with pytest.raises(ValueError, match="is not a v0.x.y BuildKit version"):
        rendered(host, "buildkitd.toml")
    bk.version = version
    bk.debug_address = bk.image = evil
    bk.gc.policies = [I.GCPolicy(filters=[evil, "type==source.local"], keep_duration=60)]
    bk.registries = {evil: I.Registry(mirrors=[evil], http=True, ca=str(ca))}
    doc = tomllib.loads(rendered(host, "buildkitd.toml"))
    level = "log" if versions.minor(version) >= versions.LOG_LEVEL else "debug"
    assert set(doc) == {level, "grpc", "worker", "registry", "history"}
    assert set(doc["grpc"]) == {"address", "debugAddress"}
    assert doc["grpc"]["address"] == ["unix:///run/buildkit/buildkitd.sock"]
    assert doc["grpc"]["debugAddress"] == evil
    assert set(doc["worker"]) == {"oci", "containerd"}
    assert doc["worker"]["oci"]["gcpolicy"] == [{"filters": [evil, "type==source.local"], "keepDuration": "60s"}]
    assert list(doc["registry"]) == [evil]
    assert doc["registry"][evil]["mirrors"] == [evil] and doc["registry"][evil]["http"] is True
    # the CA's directory on the host never comes from the value's characters
    assert doc["registry"][evil]["ca"][0].startswith("/etc/buildkit/registries/h-")


@pytest.mark.parametrize("evil", HOSTILE)
def test_compose_keeps_its_structure_whatever_the_values(host, evil):
    host.buildkit.image, host.buildkit.data_dir = evil, "/opt/x" + evil
    doc = yaml.safe_load(rendered(host, "docker-compose.yml"))
    svc = doc["services"]["buildkitd"]
    assert set(doc) == {"name", "services", "volumes"} and set(doc["services"]) == {"buildkitd"}
    assert set(svc) == {"image", "container_name", "restart", "network_mode", "entrypoint", "privileged", "volumes",
                        "healthcheck", "labels", "logging"}
    # Compose reads `$$` as a literal `$`: what it runs is exactly the value
    assert svc["image"].replace("$$", "$") == evil
    assert svc["volumes"][1].replace("$$", "$") == f"/opt/x{evil}/buildkitd.toml:/etc/buildkit/buildkitd.toml:ro"
    assert svc["network_mode"] == "host" and svc["privileged"] is True


def fence_script(bridge: str = "buildkit0") -> str:
    return render.render(files.TEMPLATES / "fence.sh.j2", "shell", bridge_name=bridge,
                         bridge_subnet="10.10.0.0/16", tenant=None, steps="10.10.0.0/15")


def test_entrypoint_runs_the_fence_and_buildkitd_with_exactly_the_rendered_words(tmp_path):
    fence = tmp_path / "fence.sh"
    fence.write_text(fence_script(SHELL_BREAKOUT))
    script = render.render(files.TEMPLATES / "entrypoint.sh.j2", "shell", privileges="privileged",
                           step_network="sandboxed", bridge_name=SHELL_BREAKOUT)
    assert script.index("fence.sh apply") < script.index("exec buildkitd")
    calls = run_with_stubs(tmp_path, script.replace("/etc/buildkit/fence.sh", str(fence)), {},
                           ["iptables", "ip6tables", "buildkitd"], isolated=True)
    fences = [c for c in calls if c[0] in ("iptables", "ip6tables")]
    by_bridge = [c for c in fences if "-i" in c]     # (the OUTPUT rule names the subnet, not the bridge)
    assert by_bridge and all(c[c.index("-i") + 1] == SHELL_BREAKOUT for c in by_bridge)
    assert calls[-1] == ["buildkitd", "--config", "/etc/buildkit/buildkitd.toml"]
    assert not (tmp_path / "pwned").exists()


def run_fence(tmp_path, mode: str, tools: dict[str, str], ipv6: bool = True,
              bridge_nf: str = "1") -> subprocess.CompletedProcess:
    """fence.sh with stand-in iptables tools (name -> shell body; `$1`... are its arguments), in namespaces of its
    own (network and mounts) over a /proc of the test's making: whether IPv6 is on, and br_netfilter's switch, are
    the test's to set, and what the fence writes there never reaches the machine's settings."""
    stubs = tmp_path / "bin"
    stubs.mkdir(exist_ok=True)
    for name, body in tools.items():
        (stubs / name).write_text(f"#!/bin/sh\necho \"{name} $*\" >> {tmp_path}/calls\n{body}\n")
        (stubs / name).chmod(0o755)
    (tmp_path / "fence.sh").write_text(fence_script())
    fake_proc = (FAKE_PROC.replace("echo 1", f"echo {bridge_nf}").replace("touch /proc/net/if_inet6 && ",
                                                                          "touch /proc/net/if_inet6 && " * ipv6)
                 + f"/bin/sh {tmp_path}/fence.sh {mode}; rc=$?; "
                 f"cat /proc/sys/net/bridge/bridge-nf-call-iptables > {tmp_path}/bridge_nf; exit $rc")
    return subprocess.run(["unshare", "--net", "--mount", "/bin/sh", "-c", fake_proc], capture_output=True,
                          text=True, env={"PATH": f"{stubs}:/usr/bin:/bin"})


ABSENT = 'for a; do [ "$a" = -C ] && exit 1; done; exit 0'   # -C: rule absent; -I: added


@pytest.mark.parametrize("ipv6", [True, False], ids=["IPv6 on", "IPv6 off"])
def test_the_fence_check_lists_every_missing_rule_and_changes_nothing(tmp_path, ipv6):
    r = run_fence(tmp_path, "check", {"iptables": ABSENT, "ip6tables": ABSENT}, ipv6=ipv6, bridge_nf="0")
    missing = r.stdout.splitlines()
    assert r.returncode == 0 and "missing: iptables -t raw PREROUTING -i buildkit0 -m addrtype --dst-type LOCAL " \
                                  "-j DROP" in missing
    assert {m.split(" -j")[0].split("PREROUTING ")[-1].split("FORWARD ")[-1] for m in missing} >= {
        "-i buildkit0 -m addrtype --dst-type BROADCAST", "-i buildkit0 -m addrtype --dst-type MULTICAST",
        "-i buildkit0 -d 169.254.0.0/16", "-i buildkit0 -d 10.10.0.0/16", "-i buildkit0 -o docker0",
        "-i buildkit0 -o br-+"}
    assert "missing: iptables -t mangle OUTPUT -d 10.10.0.0/16 -m conntrack --ctstate NEW -j DROP" in missing
    assert "missing: bridged traffic bypasses iptables (/proc/sys/net/bridge/bridge-nf-call-iptables is not 1)" \
           in missing
    assert ("missing: ip6tables -t raw PREROUTING -i buildkit0 -j DROP" in missing) is ipv6
    assert " -I " not in (tmp_path / "calls").read_text()
    assert (tmp_path / "bridge_nf").read_text() == "0\n"       # check changes nothing


@pytest.mark.parametrize("ipv6", [True, False], ids=["IPv6 on", "IPv6 off"])
def test_the_fence_apply_adds_each_missing_rule_at_the_top(tmp_path, ipv6):
    r = run_fence(tmp_path, "apply", {"iptables": ABSENT, "ip6tables": ABSENT}, ipv6=ipv6, bridge_nf="0")
    assert r.returncode == 0, r.stderr
    added = [c for c in (tmp_path / "calls").read_text().splitlines() if " -I " in c]
    assert len(added) == 8 + ipv6
    assert "iptables -w -t mangle -I FORWARD 1 -i buildkit0 -o docker0 -j DROP" in added
    assert ("ip6tables -w -t raw -I PREROUTING 1 -i buildkit0 -j DROP" in added) is ipv6
    assert (tmp_path / "bridge_nf").read_text() == "1\n"       # br_netfilter switched on


def test_the_fence_fails_closed(tmp_path):
    r = run_fence(tmp_path, "apply", {"iptables": 'for a; do [ "$a" = -I ] && exit 4; done; exit 1'})
    assert r.returncode == 1 and "refusing to run build steps without the fence" in r.stderr
    # IPv6 on, no ip6tables: never silently skipped
    r = run_fence(tmp_path, "apply", {"iptables": "exit 0"})
    assert r.returncode == 1 and "IPv6 is on and ip6tables is not installed" in r.stderr, r.stderr
    r = run_fence(tmp_path, "check", {"iptables": "exit 0"})
    assert r.stdout == "missing: IPv6 is on and ip6tables is not installed\n"
    assert run_fence(tmp_path, "apply", {"iptables": "exit 0"}, ipv6=False).returncode == 0   # (the control)


@pytest.mark.parametrize("parents,refused", [
    (["root 755 /opt", "root 755 /"], None),
    (["root 777 /opt", "root 755 /"], "/opt, on the way to buildkit.data_dir /opt/buildkit-ops, is owned by root with mode 777"),
    (["alice 755 /opt/buildkit-ops", "root 755 /opt", "root 755 /"], "is owned by alice with mode 755"),
    (["root 1777 /opt", "root 755 /"], "with mode 1777"),
])
def test_data_dirs_folders_must_be_roots_alone_before_anything_is_written(parents, refused):
    facts = converged_facts()
    facts["data_dir_parents"] = "\n".join(parents)
    if refused is None:
        assert not changed(bk_plan(facts))
        return
    with pytest.raises(buildkitd.UnsafeDataDir, match=refused.replace("(", r"\(")):
        bk_plan(facts)



def test_below_the_security_floor_a_server_serves_one_client_unless_the_host_says_so():
    import dataclasses
    old = dataclasses.replace(HOST, allow_outdated_buildkit=False)   # (HOST runs v0.13.2, the lab's)
    facts = buildkitd.parse(converged_facts())
    states = parse_file_states(file_facts(FILES))
    assert not changed(buildkitd.plan(old, FILES, facts, states, inp(old, 1)))
    with pytest.raises(buildkitd.BelowSecurityFloor, match=r"BuildKit v0.13.2 lacks fixes a server shared by 2 "
                                                           r"clients needs \(v0.31.2: .*; v0.33.1: .*; v0.34.2: .*\): run v0.34.2"):
        buildkitd.plan(old, FILES, facts, states, inp(old, 2))
    allowed = dataclasses.replace(old, allow_outdated_buildkit=True)
    assert not changed(buildkitd.plan(allowed, FILES, facts, states, inp(allowed, 2)))
