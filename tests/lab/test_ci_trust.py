"""CI without long-lived secrets, on the lab (docs/ci.md): the lab's own OIDC provider (tests/oidc_helpers.py
Provider: discovery and JWKS over HTTPS with a CA of its own, tokens shaped like GitHub's and GitLab's, RS256 and
ES256) stands in for GitHub Actions and GitLab CI; the trusts name it exactly as they would name GitHub's issuer.

A job on laptop2 (no client of the inventory: only in the trusts' networks) runs the snippet `ci-snippet` prints,
gets a certificate of at most an hour from build1's issuer, and builds and pushes through build1 and build2 in
red's daemon; the audit names its repository and ref. Each way a token, a CSR or a certificate can be wrong is
refused with its reason and no certificate; a certificate of a minute is refused once expired; one of a trust
removed is refused at the next handshake. The operator CA's key is on no build host."""
from __future__ import annotations

import hashlib
import json
import subprocess
import time

import pytest
import yaml
from ci_jobs import AUD, JOB, build, chain_on_laptop2, exchange, handshake, job, lab_run, refusal
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from helpers import INV, LAB, PKI, invoke, invoke_json, login, restore_inventory, wait_for, write_project
from oidc_helpers import Provider, alg_none, csr, github_claims, gitlab_claims, hs256_with_public_key, unknown_kid

from buildkit_ops.ci_trust.issuing import not_after
from buildkit_ops.flows import ci_login

pytestmark = pytest.mark.lab

@pytest.fixture(scope="module")
def ci(lab, tmp_path_factory):
    """Tenant red on both hosts; trusts `github` (a rule for org/app on protected refs/heads/main, into red) and
    `gitlab` (group/app on a protected ref, into red, certificates of one minute); both hosts provisioned."""
    saved = INV.read_text()
    provider = Provider(f"{LAB.subnet}.1")
    ca_file = tmp_path_factory.mktemp("oidc") / "provider-ca.pem"
    ca_file.write_bytes(provider.ca_pem)
    data = yaml.safe_load(saved)
    nets = [LAB.address("laptop2"), f"{LAB.subnet}.1"]    # the job's runner, and this machine (the refusals)
    data["all"]["vars"]["tenants"] = {"red": {"hosts": ["build1", "build2"]}}
    data["all"]["vars"]["ci_trust"] = {
        "github": {"issuer": provider.issuer("github"), "audience": AUD, "ca_file": str(ca_file), "networks": list(nets),
                   "rules": [{"claims": {"repository": "org/app", "ref": "refs/heads/main", "ref_protected": True},
                              "tenant": "red"}]},
        "gitlab": {"issuer": provider.issuer("gitlab"), "audience": AUD, "ca_file": str(ca_file), "networks": list(nets),
                   "certificate_minutes": 1,
                   "rules": [{"claims": {"project_path": "group/app", "ref_protected": True}, "tenant": "red",
                              "limits": {"builds": 2}}]}}
    INV.write_text(yaml.safe_dump(data, sort_keys=False))
    r = invoke("provision")
    assert r.returncode == 0, r.stderr[-4000:]
    reg = lab.status()["registry"]
    login(lab, "laptop2", reg)
    write_project(lab, "laptop2", reg, "/root/ci-proj")
    yield lab, provider, reg
    provider.close()
    lab_run(lab, "laptop2", "for b in buildkit-ops ci-build2 ci-short ci-gitlab; do docker buildx rm $b >/dev/null "
                            "2>&1; done; rm -rf /root/ci-job")
    restore_inventory(saved)
    invoke("remove-tenant", "red", "--confirm")
    assert invoke("provision", "--prune-clients").returncode == 0


@pytest.fixture(scope="module")
def short(ci):
    """laptop2 logged in through the gitlab trust (certificates of a minute): its builder and when it expires."""
    lab, provider, reg = ci
    r = job(lab, provider, gitlab_claims(provider.issuer("gitlab"), AUD), "gitlab", "ci-short")
    assert r.returncode == 0, r.stderr[-3000:]
    ends = not_after(chain_on_laptop2(lab, "gitlab")[0])
    b = build(lab, reg, "ci-short", str(time.time_ns()))     # (the positive control of its expiry)
    assert b.returncode == 0, b.stderr[-3000:]
    assert "alert" not in refusal(lab, "gitlab")
    return ends


def test_a_job_gets_an_hour_and_builds_and_pushes_through_both_hosts_in_reds_daemon(ci, short):
    lab, provider, reg = ci
    r = invoke("provision")                    # converged: a second run changes nothing
    assert r.returncode == 0 and "no changes" in r.stderr, [x for x in r.stderr.splitlines() if " changed " in x]
    t0 = time.time()
    r = job(lab, provider, github_claims(provider.issuer("github"), AUD))
    assert r.returncode == 0, r.stderr[-3000:]
    leaf, inter = chain_on_laptop2(lab)[:2]
    lifetime = not_after(leaf).timestamp() - t0
    window = not_after(leaf) - leaf.not_valid_before_utc
    assert 0 < lifetime <= 3600 and window.total_seconds() <= 3600, (lifetime, window)
    assert leaf.subject.rfc4514_string() == "CN=ci.github.org/app@refs/heads/main,OU=ci:github:0,O=buildkit-ops CI"
    assert inter.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "buildkit-ops CI"
    key = lab_run(lab, "laptop2", f"stat -c %a {JOB}/github/buildkit-ops/key.pem").stdout.strip()
    assert key == "600", key
    # the snippet's builder: a node per host, build1 first
    nodes = lab_run(lab, "laptop2", "docker buildx inspect buildkit-ops").stdout
    assert "buildkit-ops-build1" in nodes and "buildkit-ops-build2" in nodes, nodes
    tag = str(time.time_ns())
    b1 = build(lab, reg, "buildkit-ops", f"{tag}-1")
    assert b1.returncode == 0, b1.stderr[-3000:]
    # build2 with the same certificate (one intermediate per trust: good on every host)
    files = f"{JOB}/github/buildkit-ops"
    r = lab_run(lab, "laptop2", f"docker buildx create --name ci-build2 --driver remote --driver-opt "
                                f"cacert={files}/ca.pem,cert={files}/cert.pem,key={files}/key.pem,"
                                f"servername={LAB.address('build2')} tcp://{LAB.address('build2')}:1234")
    assert r.returncode == 0, r.stderr
    b2 = build(lab, reg, "ci-build2", f"{tag}-2")
    assert b2.returncode == 0, b2.stderr[-3000:]
    for host in ("build1", "build2"):
        r = invoke("audit", "--host", host, "--client", "ci.github.org/app@refs/heads/main", "--since", "10m",
                   "--json", "-i", str(INV))
        assert r.returncode == 0, r.stderr
        calls = json.loads(r.stdout)[host]["calls"]
        solves = [c for c in calls if c["method"].endswith("/Solve") and c["result"] == "ok"]
        assert solves and {c.get("tenant") for c in solves} == {"red"}, calls[-5:]
        # red's own daemon holds the build (its history), the fleet's does not
        hist = lab_run(lab, host, "docker exec buildkitd-red buildctl --addr unix:///run/buildkit/buildkitd.sock "
                                  "debug histories 2>/dev/null || docker exec buildkitd-red buildctl --addr "
                                  "unix:///run/buildkit/buildkitd.sock du").stdout
        assert hist.strip(), host
    pushed = lab_run(lab, "laptop2", f"docker buildx imagetools inspect {reg['address']}/ci/app:{tag}-2")
    assert pushed.returncode == 0, pushed.stderr


def test_every_wrong_token_or_csr_is_refused_with_its_reason_and_no_certificate(ci):
    lab, provider, _ = ci
    gh = provider.issuer("github")
    now = int(time.time())

    def good(**over):
        return github_claims(gh, AUD, **over)
    ca_csr = csr(extensions=[x509.BasicConstraints(ca=True, path_length=None)])
    cases = [
        ("another repository", provider.token("github", good(repository="org/other")), None, "no rule"),
        ("another ref", provider.token("github", good(ref="refs/heads/dev")), None, "no rule"),
        ("an unprotected ref", provider.token("github", good(protected=False)), None, "no rule"),
        ("wrong aud", provider.token("github", good(aud="someone-else")), None, "aud"),
        ("wrong iss", provider.token("github", good(iss=gh + "x")), None, "no trust of this server"),
        ("expired", provider.token("github", good(exp=now - 300, iat=now - 900, nbf=now - 900)), None, "expired"),
        ("nbf in the future", provider.token("github", good(nbf=now + 900)), None, "not valid yet"),
        ("alg none", alg_none(good()), None, "alg 'none'"),
        ("HS256 keyed with the public key", hs256_with_public_key(provider, good()), None, "alg 'HS256'"),
        ("an unknown kid", unknown_kid(good()), None, "no key of the issuer has kid"),
        ("an issuer not trusted", provider.token("other", github_claims(provider.issuer("other"), AUD)), None,
         "no trust of this server"),
        ("a CSR asking for a CA", provider.token("github", good()), ca_csr, "a CA certificate"),
    ]
    for what, token, csr_pem, says in cases:
        with pytest.raises(ci_login.LoginFailed) as e:
            exchange(provider, "github", token, csr_pem)
        assert says in str(e.value), (what, str(e.value))
    # the same token twice: the first gets its certificate (the positive control of every case above), the
    # second is refused, on the host that took it
    token = provider.token("github", good())
    chain = exchange(provider, "github", token)
    assert x509.load_pem_x509_certificates(chain)[0].subject.rfc4514_string().startswith("CN=ci.github.org/app@")
    with pytest.raises(ci_login.LoginFailed) as e:
        exchange(provider, "github", token)
    assert "exchanged already" in str(e.value)
    # each exchange has its audit line in the issuer's journal (the job, never the token)
    log = lab_run(lab, "build1", "journalctl -u buildkit-ops-ci-issuer --since '-10min' -o cat").stdout
    assert '"result": "issued"' in log and '"why": "the token was exchanged already' in log, log[-2000:]
    assert token not in log and token.split(".")[2] not in log


def test_the_exchange_port_answers_the_trusts_networks_only(ci):
    lab, _, _ = ci
    probe = f"nc -z -w 3 {LAB.address('build1')} 1235 && echo open || echo closed"
    assert lab_run(lab, "laptop2", probe).stdout.strip() == "open"      # in the trusts' networks
    assert lab_run(lab, "intruder", probe).stdout.strip() == "closed"   # on the same network, in none


def test_bkops_ci_login_gets_a_certificate_and_says_why_when_refused(ci, tmp_path):
    lab, provider, _ = ci
    token = tmp_path / "token"
    args = ["ci-login", "--host", LAB.address("build1"), "--ca", str(PKI / "ca.crt"), "--out", str(tmp_path / "job"),
            "--token-file", str(token)]
    token.write_text(provider.token("github", github_claims(provider.issuer("github"), AUD, ref="refs/heads/dev")))
    r = invoke(*args)
    assert r.returncode != 0 and "no rule of trust github takes org/app@refs/heads/dev" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "job").exists()
    token.write_text(provider.token("github", github_claims(provider.issuer("github"), AUD), kid="ec1"))   # ES256
    r = invoke(*args)
    assert r.returncode == 0 and "certificate ci.github.org/app@refs/heads/main" in r.stdout, r.stderr
    assert oct((tmp_path / "job" / "key.pem").stat().st_mode & 0o777) == "0o600"


def test_the_operators_ca_key_is_on_no_build_host(ci):
    lab, _, _ = ci
    ca_key = serialization.load_pem_private_key((PKI / "ca.key").read_bytes(), None)
    want = ca_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.sha256(want).hexdigest()
    # every private key on the hosts, by listing: the public key of each, as a fingerprint
    finder = ("grep -rlIs --exclude-dir=docker --exclude-dir=containerd -e 'PRIVATE KEY' /etc /opt /root /usr/local "
              "/var/lib /run /tmp /home 2>/dev/null | while read -r f; do "
              "openssl pkey -in \"$f\" -pubout -outform DER 2>/dev/null | sha256sum | cut -d' ' -f1 | "
              "sed \"s|$| $f|\"; done")
    for host in ("build1", "build2"):
        r = lab_run(lab, host, finder)
        keys = dict(line.split(" ", 1)[::-1] for line in r.stdout.splitlines() if line.strip())
        assert keys, f"{host}: no private key found at all: the search is broken"   # (the server's, the CI's)
        assert any(p.endswith("/ci-issuer/github.key") for p in keys), keys         # (positive control)
        assert digest not in keys.values(), host
        assert lab_run(lab, host, "find / -xdev -name ca.key 2>/dev/null").stdout.strip() == "", host
        mode = lab_run(lab, host, "stat -c '%a %U' /etc/buildkit-ops/ci-issuer/github.key").stdout.strip()
        assert mode == "600 root", mode


def test_a_stopped_issuer_fails_status_and_provision_starts_it_again(ci):
    lab, _, _ = ci

    def issuer_failures():
        rc, doc, err = invoke_json("status", "--host", "build1")
        assert not [w for w in doc["warnings"] if "allowlist" in w], doc["warnings"]   # (the trusts' networks)
        return rc, [f for f in doc["failures"] if "the CI issuer is" in f]
    assert issuer_failures() == (0, [])
    assert lab_run(lab, "build1", "systemctl stop buildkit-ops-ci-issuer").returncode == 0
    rc, failures = issuer_failures()
    assert rc == 1 and failures == ["build1: the CI issuer is inactive: CI jobs get no certificate there; "
                                    "run `invoke provision --host build1`"], failures
    r = invoke("provision", "--host", "build1")
    assert r.returncode == 0 and "ci_issuer: service" in r.stderr, r.stderr[-2000:]
    assert issuer_failures() == (0, [])


LONG = """FROM {reg}/lab/busybox:latest
ARG N
RUN echo "$N" > /n && sleep 30
"""


def test_a_certificate_of_a_removed_trust_is_refused_and_its_running_build_ended(ci):
    lab, provider, reg = ci
    before = handshake(lab, "github")
    assert before.returncode == 0, before.stderr            # (the positive control: the same certificate)
    # a build of the trust's job runs meanwhile: its connection is ended with the trust
    lab_run(lab, "laptop2", "mkdir -p /root/ci-long && cat > /root/ci-long/Dockerfile",
            input=LONG.format(reg=reg["address"]))
    subprocess.run(["docker", "exec", "-d", lab.container("laptop2"), "sh", "-c",
                    f"docker buildx build --builder buildkit-ops --progress plain --build-arg N={time.time_ns()} "
                    f"/root/ci-long > /root/ci-long.log 2>&1; echo rc=$? >> /root/ci-long.log"], check=True)
    wait_for(lambda: "sleep 30" in lab_run(lab, "laptop2", "cat /root/ci-long.log").stdout, timeout=60,
             what="the job's long build to run")
    t0 = time.time()
    r = invoke("remove-ci-trust", "github", "-i", str(INV))
    assert r.returncode == 0, r.stderr[-3000:]
    assert "revoked" in r.stderr, r.stderr[-3000:]

    def ended():
        text = lab_run(lab, "laptop2", "cat /root/ci-long.log").stdout
        return text if "rc=" in text else None
    log = wait_for(ended, timeout=60, what="the job's long build to end")
    assert "rc=0" not in log and time.time() - t0 < 25, log[-1500:]   # (cut, not finished: it sleeps 30 s)
    after = handshake(lab, "github")
    assert after.returncode != 0 and "alert certificate revoked" in refusal(lab, "github"), after.stderr[-2000:]
    # the other trust's jobs still build (its own intermediate is not revoked)
    r = job(lab, provider, gitlab_claims(provider.issuer("gitlab"), AUD), "gitlab", "ci-gitlab", "gitlab2")
    assert r.returncode == 0, r.stderr[-3000:]
    ok = build(lab, reg, "ci-gitlab", str(time.time_ns()))
    assert ok.returncode == 0, ok.stderr[-2000:]


def test_a_certificate_is_refused_once_its_minute_is_over(ci, short):
    lab, _, reg = ci
    wait_for(lambda: time.time() > short.timestamp() + 2, timeout=120, interval=2, what="the certificate's end")
    b = handshake(lab, "gitlab")
    assert b.returncode != 0 and "alert certificate expired" in refusal(lab, "gitlab"), b.stderr[-2000:]


def test_rotating_the_ci_issuer_revokes_the_old_certificates_and_the_next_login_builds(ci):
    lab, provider, _ = ci
    r = job(lab, provider, gitlab_claims(provider.issuer("gitlab"), AUD), "gitlab", "ci-gitlab", "gitlab2")
    assert r.returncode == 0, r.stderr[-3000:]
    before = handshake(lab, "gitlab2")       # (gitlab's: the trust left after the test before)
    assert before.returncode == 0, before.stderr            # (the positive control: the same certificate)
    assert "alert" not in refusal(lab, "gitlab2")
    r = invoke("rotate-certs", "--ci-issuer", "-i", str(INV))
    assert r.returncode == 0 and "replaced; the old one revoked" in r.stderr, r.stderr[-3000:]
    after = handshake(lab, "gitlab2")
    assert after.returncode != 0 and "alert certificate revoked" in refusal(lab, "gitlab2"), after.stderr[-2000:]
    r = job(lab, provider, gitlab_claims(provider.issuer("gitlab"), AUD), "gitlab", "ci-gitlab", "gitlab2")
    assert r.returncode == 0, r.stderr[-3000:]
    again = handshake(lab, "gitlab2")
    assert again.returncode == 0, again.stderr
