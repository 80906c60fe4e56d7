"""Helpers for the lab tests: run invoke as a user would, write test inventories, talk BuildKit from a client."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from lab.machines import Lab  # noqa: E402

# The lab this test process runs on: the suite runs its lab modules on three labs at once (tests/suite.py),
# each process on the lab of its slot; run alone, a module gets the default one (inventory.yml's).
SLOT = os.environ.get("BKOPS_LAB_SLOT", "")
LAB = Lab.for_slot(SLOT)
# The lab tests' inventory: a copy of inventory.yml beside it (relative paths keep working), made when the lab
# comes up; tasks get it as -i unless a test names another. The tracked inventory.yml is never written.
INV = ROOT / f".test-session-inventory{SLOT}.yml"
PKI = ROOT / f".pki{'-' + SLOT if SLOT else ''}"     # its pki_dir
STATE = LAB.state                                    # the lab's operator key, known_hosts, registry CA, images
VARIANTS = f".test{'-' + SLOT if SLOT else ''}-inv-"  # test variants of it: VARIANTS + name + .yml


def lab_ip(last: int) -> str:
    """An address of this lab's network that no machine has (a test's stand-in: a moved client, a CI runner)."""
    return f"{LAB.subnet}.{last}"
# the name every server certificate also holds, which a client's failover proxy checks (fleet/failover.py)
FLEET = "fleet.buildkit-ops.invalid"  # (not .test-inv-*.yml: those are variants, deleted after each module)
INVENTORY_TASKS = {"provision", "add-client", "remove-client", "list-clients", "update-clients", "rotate-certs", "cache-prune",
                   "status", "doctor", "builds", "k8s-manifests", "audit", "report", "remove-tenant", "pki-export",
                   "pki-import", "ci-snippet", "remove-ci-trust"}


def invoke(*args: str, check: bool = False) -> subprocess.CompletedProcess:
    if args and args[0] in INVENTORY_TASKS and "-i" not in args and "--inventory" not in args:
        args = (*args, "-i", str(INV))
    r = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=ROOT, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"invoke {' '.join(args)} failed ({r.returncode}):\n{r.stderr}\n{r.stdout}")
    return r


def invoke_json(*args: str) -> tuple[int, dict, str]:
    r = invoke(*args, "--json")
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON from invoke {' '.join(args)} ({r.returncode}):\n{r.stderr}\n{r.stdout}") from None
    return r.returncode, doc, r.stderr


def lab_inventory() -> str:
    """inventory.yml as this process's lab has it (the default lab: as tracked)."""
    return LAB.translate((ROOT / "inventory.yml").read_text())


def inventory_variant(name: str, edit) -> str:
    """A copy of inventory.yml beside it (so relative paths keep working), changed by edit(data)."""
    data = yaml.safe_load(lab_inventory())
    edit(data)
    path = ROOT / f"{VARIANTS}{name}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def buildhosts(data: dict) -> dict:
    return data["all"]["children"]["buildhosts"]["hosts"]


def put_client_files(lab, machine: str, files: dict[str, bytes], where: str = "/root/bk-test") -> None:
    for name, content in files.items():
        r = lab.run(machine, f"mkdir -p {where} && cat > {where}/{name} && chmod 600 {where}/{name}", capture=True,
                    input=content.decode())
        assert r.returncode == 0, r.stderr


def buildctl(lab, machine: str, address: str, args: str, where: str = "/root/bk-test", cert: bool = True,
             timeout: int = 60):
    tls = f"--tlscacert {where}/ca.crt"
    if cert:
        tls += f" --tlscert {where}/client.crt --tlskey {where}/client.key"
    return lab.run(machine, f"timeout {timeout} buildctl --timeout 10 --addr tcp://{address}:1234 {tls} {args}",
                   capture=True)


def wait_for(fn, timeout: float = 90, interval: float = 1.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def restore_inventory(saved: str, temporary_clients=("laptop2", "operator")) -> None:
    """After a module that adds clients: remove them for real (firewall, builders), then put the session
    inventory back exactly and delete the test variants."""
    for name in temporary_clients:
        if f"  {name}:" in INV.read_text():
            invoke("remove-client", name)
    INV.write_text(saved)
    for f in ROOT.glob(f"{VARIANTS}*.yml"):
        f.unlink()


def wait_until_proxy_sends_home(lab, client: str = "laptop", host: str = "build1") -> None:
    """laptop has `failover: proxy`: while its home host restarts (provision, rotate-certs), its proxy marks it
    down and sends builds to the next host, and back after two passed health checks (2 s apart). A test that
    expects its home's cache waits for that."""
    def home_up() -> bool:
        last = lab.run(client, f"docker logs buildkit-ops-proxy-buildkit-ops 2>&1 | grep 'Server {host}/{host} is' "
                               f"| tail -1", capture=True).stdout
        return not last.strip() or " is UP" in last
    wait_for(home_up, timeout=30, what=f"{client}'s failover proxy sending builds to {host} again")
    # a check that failed during the restart may still mark it down (two failures): two more intervals, UP still
    time.sleep(4.5)
    wait_for(home_up, timeout=30, what=f"{client}'s failover proxy sending builds to {host} again")


# ------------------------------------------------------------------ a project built from a client

PROJECT = """FROM {reg}/lab/busybox:latest
RUN echo "built on $(uname -m)" > /built.txt && sleep 1
RUN sha256sum /built.txt > /built.sha && sleep 1
COPY app.txt /app.txt
CMD ["cat", "/app.txt"]
"""


def login(lab, machine, reg):
    r = lab.run(machine, f"docker login -u {reg['username']} --password-stdin {reg['address']}", capture=True,
                input=reg["password"])
    assert r.returncode == 0, r.stderr


def write_project(lab, machine, reg, where="/root/proj"):
    lab.run(machine, f"mkdir -p {where} && cat > {where}/Dockerfile && echo 'hello from the team' > {where}/app.txt",
            capture=True, input=PROJECT.format(reg=reg["address"]))


def build(lab, machine, tag, where="/root/proj", push=True):
    return lab.run(machine, f"docker buildx build --builder buildkit-ops --progress plain "
                            f"{'--push ' if push else ''}-t {tag} {where}", capture=True)


# ------------------------------------------------------------------ builds that take a while, and the cache

LONG = """FROM {reg}/lab/busybox:latest
ARG N
RUN echo "$N" > /n && sleep 12
COPY app.txt /app.txt
"""


def start_long_build(lab, reg, tag):
    wait_until_proxy_sends_home(lab)   # (it must run on build1, whose restart waits for it)
    lab.run("laptop", "mkdir -p /root/long && echo long > /root/long/app.txt && cat > /root/long/Dockerfile",
            capture=True, input=LONG.format(reg=reg["address"]))
    subprocess.run(["docker", "exec", "-d", lab.container("laptop"), "sh", "-c",
                    f"docker buildx build --builder buildkit-ops --progress plain --push -t {tag} "
                    f"--build-arg N={time.time_ns()} /root/long > /root/long.log 2>&1; echo rc=$? >> /root/long.log"],
                   check=True)
    running = "docker exec buildkitd buildctl --addr unix:///run/buildkit/buildkitd.sock debug histories " \
              "--format '{{if .Record}}{{if not .Record.CompletedAt}}running{{end}}{{end}}'"
    wait_for(lambda: "running" in lab.run("build1", running, capture=True).stdout, timeout=30,
             what="the long build to start on build1")


def gateway_loads(lab, host: str = "build1") -> int:
    """How many times a host's gateway has loaded its configuration (its start and each reload, as its master
    logs them): unchanged across a run that changed the gateway in place."""
    out = lab.run(host, "docker logs buildkit-gateway 2>&1 | grep -c 'Loading success' || true", capture=True).stdout
    return int(out.strip() or 0)


def let_in(lab, host: str = "build1") -> set[str]:
    """Whom a host's firewall lets in to the BuildKit port, as "name address": the clients' set as its file names
    them, checked against the set the kernel has loaded and our rule that lets it in (all three must agree)."""
    out = lab.run(host, "cat /etc/buildkit-ops/firewall/clients; echo @@; ipset save bkops-clients4; "
                        "ipset save bkops-clients6; echo @@; iptables -S ufw-before-input | grep -c bkops-clients4",
                  capture=True).stdout
    listed, kernel, rules = out.split("@@\n")
    named = {line for line in listed.splitlines() if line and not line.startswith("#")}
    loaded = {line.split()[2] for line in kernel.splitlines() if line.startswith("add ")}
    assert loaded == {n.split()[1] for n in named}, (named, loaded)
    assert rules.strip() == "1", out
    return named


def cache_total(lab, machine="build1") -> int:
    r = lab.run(machine, "docker exec buildkitd buildctl --addr unix:///run/buildkit/buildkitd.sock du "
                         "--format '{{json .}}'", capture=True)
    return sum(x["size"] for x in json.loads(r.stdout or "[]") or [])


# ------------------------------------------------------------------ a new deployment of the lab's machines

def fingerprint(address: str) -> str:
    line = next(line for line in (STATE / "known_hosts").read_text().splitlines()
                if line.split()[0] == address and "ed25519" in line)
    r = subprocess.run(["ssh-keygen", "-lf", "-"], input=line + "\n", capture_output=True, text=True, check=True)
    return r.stdout.split()[1]


def lab_settings() -> list[str]:
    """The lab's own values (this machine has no Docker Hub: the images come from archives), as --set."""
    bk = yaml.safe_load(lab_inventory())["all"]["vars"]["buildkit"]
    out = [f"buildkit.{k}={bk[k]}" for k in ("image", "version", "privileges", "gateway_image")]
    out += [f"buildkit.{k}={ROOT / bk[k]}" for k in ("image_archive", "gateway_image_archive")]
    registries = {host: {"ca": str(ROOT / conf["ca"])} for host, conf in bk["registries"].items()}
    return out + ["allow_outdated_buildkit=true", f"buildkit.registries={json.dumps(registries)}"]


# ------------------------------------------------------------------ builds as the gateway's audit trail tells

def build_runs(calls: list[dict], client: str, since: float, at_least: float = 5.0) -> list[tuple[float, float, int]]:
    """The client's builds since `since` that ran at least `at_least` seconds, oldest first: (when it began
    running, when its Solve ended, how long it waited for its turn in ms). A build is its Solve's ref: a buildx
    build waits at its frontend's first LLBBridge/Solve, a buildctl build at its Solve (build_turns.lua)."""
    def t(iso: str) -> float:
        return dt.datetime.fromisoformat(iso).timestamp()
    out = []
    for c in calls:
        if c["client"] != client or not c["method"].endswith("Control/Solve") or not c["ref"] \
                or t(c["started"]) < since - 1:
            continue
        bridge = [b for b in calls if b["ref"] == c["ref"] and b["method"].endswith("LLBBridge/Solve")]
        first = min(bridge, key=lambda b: t(b["started"])) if bridge else c
        began = t(first["started"]) + first["waited_ms"] / 1000
        if t(c["ended"]) - began >= at_least:
            out.append((began, t(c["ended"]), first["waited_ms"]))
    return sorted(out)
