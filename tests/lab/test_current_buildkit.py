"""The BuildKit we ship, on the lab: build2 runs the current BuildKit (lab.machines.CURRENT_BUILDKIT, built from
its Go module) with the config we write for it, behind the gateway, with a tenant, and laptop2 drives it with a
current buildx (CURRENT_BUILDX): a real `buildx build --push` and a `bake`, the fence from a step, status and
cache-prune, and the gateway's method allowlist for the current buildx's calls (du and history refused to a
developer, allowed to an admin)."""
from __future__ import annotations

import json
import re
import subprocess

import pytest
from helpers import LAB, STATE, buildhosts, inventory_variant, invoke, invoke_json, login, write_project

from lab.machines import CURRENT_BUILDKIT, CURRENT_BUILDX

pytestmark = pytest.mark.lab

B2 = LAB.address("build2")
BUILDX = "docker buildx --builder buildkit-ops"
FENCED = """FROM {reg}/lab/busybox:latest
ARG N
RUN echo "$N"; echo "HOST22 $(busybox nc -w 3 {b2} 22 </dev/null 2>&1 | head -c 40)"; \\
    echo "META $(busybox nc -w 3 169.254.169.254 80 </dev/null 2>&1 | head -c 40)"; \\
    busybox wget -q -O /dev/null --no-check-certificate https://{reg}/v2/ 2>&1 | head -c 200; echo "REGISTRY done"
"""
BAKE = """target "one" {{
  context = "/root/proj"
  tags = ["{reg}/team/current-one:1"]
  output = ["type=registry"]
}}
target "two" {{
  context = "/root/proj"
  tags = ["{reg}/team/current-two:1"]
  output = ["type=registry"]
}}
group "default" {{ targets = ["one", "two"] }}
"""


def current(data: dict, role: str = "developer", tenant: bool = False) -> None:
    """build2 alone, on the current BuildKit; laptop2 its only client (with a tenant red: in it)."""
    hosts = buildhosts(data)
    hosts.pop("build1")
    hosts["build2"]["buildkit"] = {"image": f"buildkit-ops/buildkit:{CURRENT_BUILDKIT}", "version": CURRENT_BUILDKIT,
                                   "image_archive": f"{STATE.name}/images/buildkit-current.tar"}
    hosts["build2"]["allow_outdated_buildkit"] = False
    clients = data["all"]["children"]["clients"]["hosts"]
    clients.clear()
    clients["laptop2"] = {"address": LAB.address("laptop2"), "role": role, **({"tenant": "red"} if tenant else {})}
    if tenant:
        data["all"]["vars"]["tenants"] = {"red": {"hosts": ["build2"]}}


@pytest.fixture(scope="module")
def current_lab(lab):
    lab.current_buildkit(log=print)
    buildx = lab.current_buildx(log=print)
    lab.reset("build2")
    subprocess.run(["docker", "exec", LAB.container("laptop2"), "mkdir", "-p", "/root/.docker/cli-plugins"], check=True)
    subprocess.run(["docker", "cp", str(buildx), f"{LAB.container('laptop2')}:/root/.docker/cli-plugins/docker-buildx"], check=True)
    inv = inventory_variant("current", current)
    reg = lab.status()["registry"]
    login(lab, "laptop2", reg)
    write_project(lab, "laptop2", reg)
    yield lab, inv, reg
    lab.run("laptop2", "docker buildx rm buildkit-ops; rm -f /root/.docker/cli-plugins/docker-buildx", capture=True)
    lab.reset("build2")     # (back to a fresh droplet: other modules provision it with the lab's own BuildKit)


def test_the_current_buildkit_takes_our_config_and_serves_a_current_buildx_through_the_gateway(current_lab):
    lab, inv, reg = current_lab
    r = invoke("provision", "-i", inv)
    assert r.returncode == 0, r.stderr
    assert invoke("provision", "-i", inv).returncode == 0
    version = lab.run("laptop2", "docker buildx version", capture=True).stdout
    assert CURRENT_BUILDX in version, version
    r = invoke("add-client", "laptop2", "-i", inv)
    assert r.returncode == 0, r.stderr
    workers = lab.run("build2", "docker exec buildkitd buildctl --addr unix:///run/buildkit/buildkitd.sock debug "
                                "workers -v", capture=True).stdout
    assert re.search(r"worker\.network:\s+cni", workers), workers
    # the GC policy we wrote (the default, in this version's own terms) is what it applies
    assert re.search(r"Filters:\s+type==source.local type==exec.cachemount type==source.git.checkout", workers)
    assert re.search(r"All:\s+true\s+Maximum used space:\s+10GB", workers), workers
    r = lab.run("laptop2", f"{BUILDX} build --progress plain --push -t {reg['address']}/team/current:1 /root/proj",
                capture=True)
    assert r.returncode == 0, r.stderr[-2500:]
    # what the current buildx names, as the gateway's ownership check read it: a Solve its ref and session, its
    # Session stream the same session, every frontend-bridge call the ref (docs/security.md)
    log = lab.run("build2", "docker logs buildkit-gateway 2>&1", capture=True).stdout
    ref, session = re.findall(r"solve started client=laptop2 ref=(\S+) session=(\S+)", log)[-1]
    assert re.search(rf'method="/moby.buildkit.v1.Control/Session" .* session={session}', log), log[-3000:]
    assert re.search(rf'method="/moby.buildkit.v1.frontend.LLBBridge/\w+" .* ref={ref} ', log), log[-3000:]
    lab.run("laptop2", "cat > /root/docker-bake.hcl", capture=True, input=BAKE.format(reg=reg["address"]))
    r = lab.run("laptop2", f"cd /root && {BUILDX} bake --progress plain", capture=True)
    assert r.returncode == 0, r.stderr[-2500:]
    rc, doc, err = invoke_json("status", "-i", inv)
    h = doc["hosts"]["build2"]
    assert h["buildkitd"]["version"] == CURRENT_BUILDKIT and h["buildkitd"]["fence_missing"] == [], h["buildkitd"]
    assert not any("lacks security fixes" in w for w in doc["warnings"]), doc["warnings"]
    rc, doc, err = invoke_json("cache-prune", "-i", inv, "--keep-duration", "1h")
    assert rc == 0, err


def test_a_step_on_the_current_buildkit_stays_behind_the_fence(current_lab):
    lab, inv, reg = current_lab
    lab.run("laptop2", "mkdir -p /root/fenced && cat > /root/fenced/Dockerfile", capture=True,
            input=FENCED.format(reg=reg["address"], b2=B2))
    r = lab.run("laptop2", f"{BUILDX} build --progress plain --no-cache /root/fenced", capture=True)
    assert r.returncode == 0, r.stderr[-2500:]
    out = r.stderr
    assert "SSH-" not in out and "REGISTRY done" in out, out[-2500:]   # the host's sshd unreachable; the registry not


@pytest.mark.parametrize("role", ["developer", "admin"])
def test_the_method_allowlist_holds_for_the_current_buildx(current_lab, role):
    lab, _, reg = current_lab
    inv = inventory_variant(f"current-{role}", lambda d: current(d, role))
    assert invoke("provision", "-i", inv).returncode == 0
    for call in ("du", "history ls"):
        r = lab.run("laptop2", f"{BUILDX} {call}", capture=True)
        if role == "admin":
            assert r.returncode == 0, (call, r.stderr[-1500:])
        else:
            assert r.returncode != 0 and "PermissionDenied" in r.stderr.replace("code = PermissionDenied", "PermissionDenied"), (call, r.stderr[-1500:])
            assert "needs role admin" in r.stderr, (call, r.stderr[-1500:])


def test_a_tenant_on_the_current_buildkit_builds_in_its_own_daemon(current_lab):
    lab, _, reg = current_lab
    inv = inventory_variant("current-tenant", lambda d: current(d, tenant=True))
    r = invoke("provision", "-i", inv)
    assert r.returncode == 0, r.stderr
    r = lab.run("laptop2", f"{BUILDX} build --progress plain -t {reg['address']}/team/red:1 --push /root/proj",
                capture=True)
    assert r.returncode == 0, r.stderr[-2500:]
    du = lab.run("build2", "docker exec buildkitd-red buildctl --addr unix:///run/buildkit/buildkitd.sock du "
                           "--format '{{json .}}'", capture=True).stdout
    assert sum(x["size"] for x in json.loads(du or "[]") or []) > 0, du    # red's own cache got the build
