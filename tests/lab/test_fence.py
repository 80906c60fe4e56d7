"""The build steps' fence on the lab (fence.sh): steps of builds running at once cannot reach each other, nor
other containers of the host, nor its broadcast and multicast addresses; without ip6tables on an IPv6 host the
fence refuses to start; a fence taken away while buildkitd runs is reported by status and put back by
provision without a restart; nothing in the host's namespace reaches a step."""
from __future__ import annotations

import re
import secrets
import subprocess

import pytest
from helpers import invoke, invoke_json, wait_for

pytestmark = pytest.mark.lab

IMAGE = "buildkit-ops/buildkit:v0.13.2"
OTHER = "bkops-other-container"
# Two stages run at once (BuildKit runs independent stages in parallel): one listens, the other probes every
# address its neighbour may have, a container on the host's docker0, and the host's broadcast and multicast
# addresses (busybox ping sets SO_BROADCAST).
TWO_STEPS = """FROM {reg}/lab/busybox:latest AS listener
ARG NONCE
RUN echo "$NONCE"; (busybox nc -ll -p 8080 -e echo step-a &); sleep 25; touch /a
FROM {reg}/lab/busybox:latest AS prober
ARG NONCE
RUN echo "$NONCE"; sleep 5; for i in 2 3 4 5 6 7 8 9; do \\
      if busybox nc -w 1 10.10.0.$i 8080 </dev/null 2>/dev/null | grep -q step-a; then echo "PEER 10.10.0.$i"; fi; \\
    done; echo "OTHER $(busybox nc -w 3 {other} 7777 </dev/null 2>/dev/null)"; \\
    busybox ping -c 2 -W 1 224.0.0.251 >/dev/null 2>&1; busybox ping -c 2 -W 1 255.255.255.255 >/dev/null 2>&1; \\
    echo PROBED; touch /b
FROM {reg}/lab/busybox:latest
COPY --from=listener /a /a
COPY --from=prober /b /b
"""


@pytest.fixture(scope="module")
def served(lab):
    r = invoke("provision")
    assert r.returncode == 0, r.stderr
    r = invoke("add-client", "laptop")
    assert r.returncode == 0, r.stderr
    reg = lab.status()["registry"]
    r = lab.run("laptop", f"docker login -u {reg['username']} --password-stdin {reg['address']}", capture=True,
                input=reg["password"])
    assert r.returncode == 0, r.stderr
    return reg


def drops(lab) -> dict[str, int]:
    """Packets each of the fence's raw-table rules dropped, by what it matches."""
    out = lab.run("build1", "iptables -t raw -L PREROUTING -v -x -n", capture=True).stdout
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s+\d+\s+DROP.*?(dst-type \w+|\S+/\d+)\s*$",
                                                              out, re.M)}


def started(lab) -> str:
    return lab.run("build1", "docker inspect -f '{{.State.StartedAt}}' buildkitd", capture=True).stdout.strip()


def test_steps_reach_neither_each_other_nor_other_containers_nor_host_broadcasts(lab, served):
    lab.run("build1", f"docker rm -f {OTHER} >/dev/null 2>&1; docker run -d --name {OTHER} --entrypoint /bin/sh "
                      f"{IMAGE} -c 'while true; do nc -l -p 7777 -e echo other-container; done'", capture=True)
    try:
        other = lab.run("build1", f"docker inspect -f '{{{{.NetworkSettings.IPAddress}}}}' {OTHER}",
                        capture=True).stdout.strip()
        reached = lab.run("build1", f"nc -w 3 {other} 7777 </dev/null", capture=True).stdout
        assert "other-container" in reached   # (it answers the host: the probe below would see it if it leaked)
        before = drops(lab)
        lab.run("laptop", "mkdir -p /root/fence && cat > /root/fence/Dockerfile", capture=True,
                input=TWO_STEPS.format(reg=served["address"], other=other))
        r = lab.run("laptop", f"docker buildx build --builder buildkit-ops --progress plain "
                              f"--build-arg NONCE={secrets.token_hex(8)} /root/fence", capture=True)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "PROBED" in r.stderr
        assert re.findall(r"PEER (10\.10\.0\.[0-9]+)", r.stderr) == []      # the neighbouring step: dropped
        assert "other-container" not in r.stderr                              # docker0's container: dropped
        after = drops(lab)
        assert after["dst-type MULTICAST"] > before.get("dst-type MULTICAST", 0)
        assert after["dst-type BROADCAST"] > before.get("dst-type BROADCAST", 0)
        assert after["10.10.0.0/16"] > before.get("10.10.0.0/16", 0)
    finally:
        lab.run("build1", f"docker rm -f {OTHER}", capture=True)


def test_without_ip6tables_on_an_ipv6_host_the_fence_refuses_to_start(lab, served):
    r = lab.run("build1", "docker exec buildkitd sh -c 'mkdir -p /tmp/no6 && ln -sf /usr/bin/iptables /tmp/no6/ && "
                          "PATH=/tmp/no6:/bin /bin/sh /etc/buildkit/fence.sh apply'", capture=True)
    assert r.returncode == 1
    assert "IPv6 is on and ip6tables is not installed: refusing to run build steps without the fence" in r.stderr


def test_a_fence_taken_away_is_reported_and_put_back_without_a_restart(lab, served):
    since = started(lab)
    # what a firewall reload or `nft flush` of those chains does, while buildkitd keeps running
    lab.run("build1", "iptables -t raw -F PREROUTING; iptables -t mangle -F FORWARD; ip6tables -t raw -F PREROUTING",
            capture=True)
    rc, doc, err = invoke_json("status", "--host", "build1")
    assert rc == 1
    down = [f for f in doc["failures"] if f.startswith("build1: the build-step fence is down (")]
    assert down and "to put it back (no restart)" in down[0], doc["failures"]
    r = invoke("provision", "--host", "build1")
    assert r.returncode == 0, r.stderr
    assert re.search(r"changed\s+buildkitd: build-step fence\s+8 rule\(s\) missing: put back", r.stderr), r.stderr
    assert started(lab) == since
    rc, doc, err = invoke_json("status", "--host", "build1")
    assert doc["hosts"]["build1"]["buildkitd"]["fence_missing"] == []
    assert not [f for f in doc["failures"] if "fence" in f]
    r = invoke("provision", "--host", "build1")
    assert re.search(r"ok\s+buildkitd: build-step fence\s+in place", r.stderr), r.stderr


LISTENER = """FROM {reg}/lab/busybox:latest
ARG NONCE
RUN echo "$NONCE"; echo "MY""IP $(busybox ip addr show eth0 | busybox grep -o 'inet [0-9.]*' | cut -d' ' -f2)"; \\
    (busybox timeout 25 busybox nc -l -p 8080 >/dev/null 2>&1 &); seen=; \\
    for i in $(busybox seq 1 40); do \\
      busybox netstat -tan | busybox grep -q ':8080 .*SYN_RECV' && seen=syn && break; busybox sleep 0.5; \\
    done; echo "G""OT[$seen]"
"""
OUTPUT_RULE = "-d 10.10.0.0/16 -m conntrack --ctstate NEW -j DROP"


def step_reached_from_the_host(lab, reg) -> str:
    """A step listens on 8080 and watches for a connection attempt (a SYN it answers: SYN_RECV); each build host
    opens a connection to it from its own network namespace (where buildkitd and every daemon run). Returns
    `syn` if one arrived. (The markers are split in the Dockerfile: the plain progress shows each RUN line.)"""
    lab.run("laptop", "mkdir -p /root/listen && cat > /root/listen/Dockerfile", capture=True,
            input=LISTENER.format(reg=reg["address"]))
    subprocess.run(["docker", "exec", "-d", lab.container("laptop"), "sh", "-c",
                    f"docker buildx build --builder buildkit-ops --progress plain --build-arg NONCE="
                    f"{secrets.token_hex(8)} /root/listen > /root/listen.log 2>&1"], check=True)
    ip = wait_for(lambda: (re.findall(r"MYIP (10\.10\.[0-9.]+)", lab.run("laptop", "cat /root/listen.log",
                                                                         capture=True).stdout) or [None])[0],
                  timeout=60, what="the listening step's address")
    for host in ("build1", "build2"):   # (laptop's home is build1; its failover proxy may use build2)
        lab.run(host, f"nc -w 3 {ip} 8080 </dev/null", capture=True)
    got = wait_for(lambda: re.findall(r"GOT\[([^\]]*)\]", lab.run("laptop", "cat /root/listen.log",
                                                                   capture=True).stdout), timeout=40,
                   what="the listening step to end")
    return got[0]


def test_nothing_in_the_hosts_namespace_reaches_a_build_step(lab, served):
    """Where buildkitd and every daemon of the host run, nothing opens a connection to a build step: not even its
    first packet arrives (a connection could not complete anyway: the step's answer to a host address is
    dropped; a datagram would get through). Control: with the fence's OUTPUT rule taken away, it arrives."""
    assert step_reached_from_the_host(lab, served) == ""
    for host in ("build1", "build2"):
        lab.run(host, f"iptables -t mangle -D OUTPUT {OUTPUT_RULE}", capture=True)
    try:
        assert step_reached_from_the_host(lab, served) == "syn"
    finally:
        assert invoke("provision").returncode == 0      # the rule put back on both hosts
    assert lab.run("build1", f"iptables -t mangle -C OUTPUT {OUTPUT_RULE}").returncode == 0
