"""The CI certificate: a client certificate of an hour at most for the job's own key, signed by its trust's
intermediate; a CSR asking for more is refused; the intermediate cannot sign outside the CI namespace (checked by
OpenSSL, as the gateway's HAProxy checks a chain); and the operator CA of today (path length 0) cannot carry an
intermediate at all."""
from __future__ import annotations

import datetime as dt
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from oidc_helpers import csr, root

from buildkit_ops.ci_trust import issuing, rules, tokens

TRUST = rules.Trust("github", "https://token.actions.githubusercontent.com", "buildkit-ops",
                    (rules.Rule({"repository": "org/app", "ref": "refs/heads/main"}, tenant="red"),), minutes=60)
CLAIMS = {"repository": "org/app", "ref": "refs/heads/main", "jti": "x"}


def pem(c):
    return c.public_bytes(serialization.Encoding.PEM)


def openssl_verify(tmp_path, ca, chain_pem):
    (tmp_path / "ca.pem").write_bytes(pem(ca.cert))
    leaf, inter = chain_pem.split(b"-----END CERTIFICATE-----\n", 1)
    (tmp_path / "leaf.pem").write_bytes(leaf + b"-----END CERTIFICATE-----\n")
    (tmp_path / "inter.pem").write_bytes(inter)
    return subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "ca.pem"), "-untrusted",
                           str(tmp_path / "inter.pem"), "-purpose", "sslclient", str(tmp_path / "leaf.pem")],
                          capture_output=True, text=True)


def test_the_job_gets_a_client_certificate_of_an_hour_at_most_that_openssl_verifies(tmp_path):
    ca = root(1)
    inter_cert, inter_key = issuing.intermediate(ca.cert, ca.key, "github", 30)
    now = dt.datetime.now(dt.timezone.utc)
    chain = issuing.issue(issuing.checked_csr(csr()), inter_cert, inter_key, TRUST, 0, TRUST.rules[0], CLAIMS, now)
    cert = x509.load_pem_x509_certificates(chain)[0]
    assert cert.not_valid_after_utc - now <= dt.timedelta(hours=1)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert cert.subject.rfc4514_string() == "CN=ci.github.org/app@refs/heads/main,OU=ci:github:0,O=buildkit-ops CI"
    chose = issuing.chosen_by(cert)
    assert chose == {"trust": "github", "rule": 0, "tenant": "red", "role": "developer",
                     "job": "org/app@refs/heads/main", "claims": {"ref": "refs/heads/main", "repository": "org/app"}}
    r = openssl_verify(tmp_path, ca, chain)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_intermediate_signs_nothing_outside_the_ci_namespace(tmp_path):
    ca = root(1)
    inter_cert, inter_key = issuing.intermediate(ca.cert, ca.key, "github", 30)
    now = dt.datetime.now(dt.timezone.utc)
    forged = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "laptop")]))
              .issuer_name(inter_cert.subject).public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
              .serial_number(7).not_valid_before(now).not_valid_after(now + dt.timedelta(hours=1))
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
              .sign(inter_key, hashes.SHA256()))
    r = openssl_verify(tmp_path, ca, pem(forged) + pem(inter_cert))
    assert r.returncode != 0 and "subtree" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


def test_an_operator_ca_of_path_length_0_made_before_cannot_carry_an_intermediate(tmp_path):
    ca = root(0)
    inter_cert, inter_key = issuing.intermediate(ca.cert, ca.key, "github", 30)
    chain = issuing.issue(issuing.checked_csr(csr()), inter_cert, inter_key, TRUST, 0, TRUST.rules[0], CLAIMS)
    r = openssl_verify(tmp_path, ca, chain)
    assert r.returncode != 0 and "path length" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


@pytest.mark.parametrize("extensions,says", [
    ([x509.BasicConstraints(ca=True, path_length=None)], "a CA certificate"),
    ([x509.KeyUsage(False, False, False, False, False, True, False, False, False)], "a CA certificate"),
    ([x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH])], "a server"),
    ([x509.SubjectAlternativeName([x509.DNSName("build1.lab")])], "names"),
], ids=["CA", "key cert sign", "server auth", "server names"])
def test_a_csr_asking_for_more_than_a_client_certificate_is_refused(extensions, says):
    with pytest.raises(tokens.Refused, match=says):
        issuing.checked_csr(csr(extensions=extensions))
    assert issuing.checked_csr(csr())       # (the control: a plain CSR passes)


def test_a_weak_or_foreign_key_is_refused():
    with pytest.raises(tokens.Refused, match="2048 bits"):
        issuing.checked_csr(csr(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    with pytest.raises(tokens.Refused, match="not a certificate signing request"):
        issuing.checked_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")


def test_a_long_job_name_is_cut_to_64_characters_with_a_digest():
    long = {"repository": "org/" + "a" * 80, "ref": "refs/heads/main"}
    cn = issuing.common_name("github", long)
    assert len(cn) == 64 and cn.startswith("ci.github.org/aaa") and cn != issuing.common_name(
        "github", {**long, "ref": "refs/heads/other"})
