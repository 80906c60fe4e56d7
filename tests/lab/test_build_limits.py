"""Limits that count builds, on the lab: with `limits: {builds: 1}`, laptop's four builds started at once run one
after the other, whether they share one connection (a bake of four targets) or come over four (four buildx
processes), also while a third client is added in the middle (in place) and across a reload of the gateway (the
old worker's builds counted by the new one); laptop2's build runs at once meanwhile, and
`builds --running` names both while they run. With `queue: 1`, the build past the queue is refused at once with
RESOURCE_EXHAUSTED saying the limit and how many run."""
from __future__ import annotations

import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import pytest
import yaml
from helpers import (
    INV,
    build_runs,
    gateway_loads,
    invoke,
    invoke_json,
    login,
    restore_inventory,
    wait_for,
    wait_until_proxy_sends_home,
)

pytestmark = pytest.mark.lab

STEP = """FROM {reg}/lab/busybox:latest
ARG N
RUN echo "$N" > /n && sleep {seconds}
"""


def bake_file(n: int) -> str:
    """Four targets of the same 6 s step, each with an argument of its own (no cache between them)."""
    targets = "".join(f'target "t{i}" {{\n  context = "/root/limits/short"\n  args = {{ N = "t{i}-{n}" }}\n}}\n'
                      for i in range(1, 5))
    return 'group "default" { targets = ["t1", "t2", "t3", "t4"] }\n' + targets


BUILDX = "docker buildx build --builder buildkit-ops --progress plain"


def with_limits(**limits) -> None:
    data = yaml.safe_load(INV.read_text())
    data["all"]["children"]["clients"]["hosts"]["laptop"]["limits"] = limits
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    r = invoke("provision", "--host", "build1")
    assert r.returncode == 0 and "queues.map" in r.stderr and "in force in place" in r.stderr, r.stderr[-2000:]


@pytest.fixture(scope="module")
def limited(lab):
    """laptop (failover proxy, home build1) with a limit of one build; laptop2 without a limit."""
    saved = INV.read_text()
    assert invoke("provision").returncode == 0
    for name in ("laptop", "laptop2"):
        r = invoke("add-client", name, *(("--address", lab.address(name)) if name == "laptop2" else ()))
        assert r.returncode == 0, r.stderr
    reg = lab.status()["registry"]
    for machine in ("laptop", "laptop2"):
        login(lab, machine, reg)
    lab.run("laptop", "mkdir -p /root/limits/short && cat > /root/limits/short/Dockerfile", capture=True,
            input=STEP.format(reg=reg["address"], seconds=6))
    lab.run("laptop2", "mkdir -p /root/limits/long && cat > /root/limits/long/Dockerfile", capture=True,
            input=STEP.format(reg=reg["address"], seconds=20))
    with_limits(builds=1)
    wait_until_proxy_sends_home(lab)
    yield lab
    restore_inventory(saved, temporary_clients=("laptop2", "ci-third"))
    assert invoke("provision", "--prune-clients").returncode == 0


def audit(host: str | None = "build1") -> list[dict]:
    rc, doc, err = invoke_json("audit", *(("--host", host) if host else ()), "--since", "10m")
    assert rc == 0, err
    return [c for h in doc.values() for c in h.get("calls", [])]


def one_after_the_other(runs: list[tuple[float, float, int]]) -> bool:
    return all(later[0] >= earlier[1] - 0.3 for earlier, later in pairwise(runs))


def laptop2_builds_meanwhile(lab) -> subprocess.Popen:
    return subprocess.Popen(["docker", "exec", lab.container("laptop2"), "sh", "-c",
                             f"{BUILDX} --build-arg N={time.time_ns()} /root/limits/long"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_a_bake_of_four_targets_on_one_connection_runs_one_build_at_a_time(limited):
    lab = limited
    since = time.time()
    other = laptop2_builds_meanwhile(lab)
    lab.run("laptop", "cat > /root/limits/docker-bake.hcl", capture=True, input=bake_file(time.time_ns()))
    r = lab.run("laptop", "cd /root/limits && docker buildx bake --builder buildkit-ops --progress plain", capture=True)
    assert r.returncode == 0, r.stderr[-2500:]
    assert other.wait() == 0, other.stderr.read()[-2000:]
    runs = build_runs(audit(), "laptop", since)
    assert len(runs) == 4 and one_after_the_other(runs), runs
    # the control: laptop2's build ran meanwhile, at once, beside laptop's (two builds at once are possible)
    (theirs,) = build_runs(audit(None), "laptop2", since, at_least=15)
    assert theirs[2] == 0 and theirs[0] < runs[-1][0] and theirs[1] > runs[0][0], (theirs, runs)


def test_four_builds_over_four_connections_run_one_at_a_time_also_while_a_client_is_added(limited):
    lab = limited
    since, loads = time.time(), gateway_loads(lab)
    other = laptop2_builds_meanwhile(lab)

    def build(i: int):
        time.sleep(0.2 * i)
        return lab.run("laptop", f"{BUILDX} --build-arg N=c{i}-{time.time_ns()} /root/limits/short", capture=True)
    with ThreadPoolExecutor(4) as pool:
        runs = [pool.submit(build, i) for i in range(4)]
        # while they run: builds --running names both clients, and a third client is added (in place)
        running = wait_for(lambda: _running_clients() >= {"laptop", "laptop2"}, timeout=60,
                           what="builds --running to name laptop and laptop2")
        r = invoke("add-client", "ci-third", "--address", lab.address("intruder"), "--connection", "none")
        assert r.returncode == 0, r.stderr[-2000:]
        results = [f.result() for f in runs]
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results if r.returncode]
    assert other.wait() == 0, other.stderr.read()[-2000:]
    assert running
    mine = build_runs(audit(), "laptop", since)
    assert len(mine) == 4 and one_after_the_other(mine), mine
    assert gateway_loads(lab) == loads      # (the third client came in place: the same worker counted all four)


def test_a_reload_in_the_middle_of_limited_builds_keeps_the_count_across_the_two_workers(limited):
    """A change of haproxy.cfg (here the gateway's idle timeout) reloads the gateway: laptop's builds started
    before it run and wait in the old worker, those started after it reach the new one, and laptop never has
    two running."""
    lab = limited
    since, loads = time.time(), gateway_loads(lab)
    other = laptop2_builds_meanwhile(lab)

    def build(i: int):
        return lab.run("laptop", f"{BUILDX} --build-arg N=r{i}-{time.time_ns()} /root/limits/short", capture=True)
    with ThreadPoolExecutor(4) as pool:
        before = [pool.submit(build, i) for i in range(2)]
        wait_for(lambda: "laptop" in _running_clients(), timeout=60, what="laptop's first build to run")
        data = yaml.safe_load(INV.read_text())
        data["all"]["vars"]["buildkit"]["gateway_idle_timeout"] = "119m"
        INV.write_text(yaml.safe_dump(data, sort_keys=False))
        r = invoke("provision", "--host", "build1")
        assert r.returncode == 0 and "reload gateway" in r.stderr, r.stderr[-2000:]
        after = [pool.submit(build, i) for i in (2, 3)]
        results = [f.result() for f in before + after]
    assert all(r.returncode == 0 for r in results), [r.stderr[-2000:] for r in results if r.returncode]
    assert other.wait() == 0, other.stderr.read()[-2000:]
    assert gateway_loads(lab) == loads + 1   # (one reload: two workers ran laptop's builds)
    mine = build_runs(audit(), "laptop", since)
    assert len(mine) == 4 and one_after_the_other(mine), mine
    # the control: laptop2's build ran beside laptop's (two builds at once were possible across the reload)
    (theirs,) = build_runs(audit(None), "laptop2", since, at_least=15)
    assert theirs[0] < mine[-1][0] and theirs[1] > mine[0][0], (theirs, mine)


def _running_clients() -> set[str]:
    rc, doc, err = invoke_json("builds", "--running")
    assert rc == 0, err
    return {b["client"] for h in doc.values() for b in h.get("builds", []) if b["result"] == "running"}


def test_a_build_past_the_queue_is_refused_at_once_saying_the_limit(limited):
    lab = limited
    with_limits(builds=1, queue=1)
    wait_until_proxy_sends_home(lab)

    def build(i: int):
        time.sleep(0.7 * i)
        return lab.run("laptop", f"{BUILDX} --build-arg N=q{i}-{time.time_ns()} /root/limits/short", capture=True)
    with ThreadPoolExecutor(3) as pool:
        results = [f.result() for f in [pool.submit(build, i) for i in range(3)]]
    refused = [r for r in results if r.returncode != 0]
    assert len(refused) == 1 and sum(r.returncode == 0 for r in results) == 2, [r.stderr[-800:] for r in results]
    assert "laptop has 1 builds running (limit 1) and 1 waiting (queue limit 1)" in refused[0].stderr, \
        refused[0].stderr[-2000:]
    assert "ResourceExhausted" in refused[0].stderr or "resource exhausted" in refused[0].stderr.lower()
