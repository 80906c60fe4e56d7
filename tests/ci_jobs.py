"""A CI job on the lab (tests/lab/test_ci_trust.py): laptop2 runs what `ci-snippet` prints with a token of the
lab's OIDC provider (oidc_helpers.Provider), builds with the certificate it got, and is refused in words."""
from __future__ import annotations

import time

from cryptography import x509
from helpers import INV, LAB, PKI, invoke
from oidc_helpers import csr

from buildkit_ops.flows import ci_login

AUD = "buildkit-ops"
JOB = "/root/ci-job"          # the job's folder on laptop2 (its files: $RUNNER_TEMP/buildkit-ops)


def lab_run(lab, machine, command, **kw):
    return lab.run(machine, command, capture=True, **kw)


def job(lab, provider, claims, kind="github", builder="buildkit-ops", where=None):
    """What a CI job runs on laptop2: the snippet, with its token in $BKOPS_ID_TOKEN (its files in
    JOB/WHERE/buildkit-ops; WHERE: the kind)."""
    where = where or kind
    r = invoke("ci-snippet", kind, "--kind", "shell", "--builder", builder, "-i", str(INV))
    assert r.returncode == 0, r.stderr
    token = provider.token(kind, claims)
    return lab_run(lab, "laptop2", f"mkdir -p {JOB}/{where} && cd {JOB} && RUNNER_TEMP={JOB}/{where} "
                                   f"BKOPS_ID_TOKEN={token} sh -s", input=r.stdout)


def chain_on_laptop2(lab, kind="github") -> list[x509.Certificate]:
    text = lab_run(lab, "laptop2", f"cat {JOB}/{kind}/buildkit-ops/cert.pem").stdout
    return x509.load_pem_x509_certificates(text.encode())


def build(lab, reg, builder, tag):
    return lab_run(lab, "laptop2", f"docker buildx build --builder {builder} --progress plain --push "
                                   f"--build-arg CI_NONCE={time.time_ns()} -t {reg['address']}/ci/app:{tag} "
                                   f"/root/ci-proj")


def exchange(provider, name, token, csr_pem=None, host="build1"):
    """One exchange from this machine (in the trusts' networks) at a host's issuer: the chain, or LoginFailed."""
    ca = (PKI / "ca.crt").read_bytes()
    return ci_login.exchange(token, ca, f"https://{LAB.address(host)}:1235/v1/certificate", csr_pem or csr())


def handshake(lab, where):
    """A gRPC call through build1's gateway with a job's files (buildctl: buildx only says that it waited for a
    connection when refused)."""
    files = f"{JOB}/{where}/buildkit-ops"
    return lab_run(lab, "laptop2", f"timeout 60 buildctl --timeout 10 --addr tcp://{LAB.address('build1')}:1234 "
                                   f"--tlscacert {files}/ca.pem --tlscert {files}/cert.pem --tlskey {files}/key.pem "
                                   f"--tlsservername {LAB.address('build1')} debug workers")


def refusal(lab, where):
    """Why the gateway refuses a job's certificate, as OpenSSL reads the TLS alert (a gRPC client may find the
    connection closed before it reads the alert: `broken pipe`)."""
    files = f"{JOB}/{where}/buildkit-ops"
    r = lab_run(lab, "laptop2", f"sleep 1 | timeout 20 openssl s_client -connect {LAB.address('build1')}:1234 "
                                f"-cert {files}/cert.pem -cert_chain {files}/cert.pem -key {files}/key.pem "
                                f"-CAfile {files}/ca.pem -alpn h2 2>&1")
    return r.stdout
