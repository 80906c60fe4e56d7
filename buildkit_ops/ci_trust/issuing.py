"""The CI certificate: the job's CSR (its key never leaves the job) signed by its trust's intermediate CA, for an
hour at most, for client authentication only, naming the job (its repository or project and ref) and the claims
that chose it. The intermediate is the operator CA's, limited to this: path length 0, client-auth only, and
name-constrained to the CI namespace (O=buildkit-ops CI), so that even its key, kept on the build hosts, can sign
neither a CA, nor a server, nor a developer's certificate."""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
from typing import Any
from urllib.parse import quote, unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .rules import MAX_MINUTES, Rule, Trust
from .tokens import Refused

CI_ORG = "buildkit-ops CI"
# The claims that chose a certificate, as JSON in a URI of its subject alternative names (the way SPIFFE names a
# workload: an extension of our own would need an OID, and Debian 12's cryptography 38 parses no UUID arc).
CLAIMS_URN = "urn:buildkit-ops:ci:"
SKEW = dt.timedelta(minutes=1)


def not_after(cert: x509.Certificate) -> dt.datetime:
    """A certificate's end, timezone-aware, with the cryptography of Debian 12 (38) as with today's."""
    end = getattr(cert, "not_valid_after_utc", None)
    return end if end is not None else cert.not_valid_after.replace(tzinfo=dt.timezone.utc)


def intermediate(root_cert: x509.Certificate, root_key: ec.EllipticCurvePrivateKey, trust: str, days: int,
                 now: dt.datetime | None = None) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A trust's intermediate CA, signed by the operator's CA (on the operator's machine)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    # 64 random bits, in its name too: the gateway logs which intermediate signed each CI connection's
    # certificate (its CN's last word), so that revoking this one ends exactly its connections
    serial = int.from_bytes(os.urandom(8), "big") | 1 << 63
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CI_ORG),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"CI issuer {trust} {serial:x}")])
    # (its O is the CI namespace's: the gateway takes a certificate's CI roles only when its issuer's O says so,
    # and no certificate of the operator's CA but an intermediate has it)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(root_cert.subject)
            .public_key(key.public_key()).serial_number(serial)
            .not_valid_before(now - SKEW).not_valid_after(min(now + dt.timedelta(days=days),
                                                              not_after(root_cert)))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.NameConstraints(permitted_subtrees=[x509.DirectoryName(x509.Name(
                [x509.NameAttribute(NameOID.ORGANIZATION_NAME, CI_ORG)]))], excluded_subtrees=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()),
                           critical=False)
            .sign(root_key, hashes.SHA256()))
    return cert, key


def checked_csr(pem: bytes) -> x509.CertificateSigningRequest:
    """The job's CSR (PEM, or its DER in base64: what a shell makes without a JSON tool), if it asks for nothing
    but a client certificate for its own key."""
    try:
        csr = x509.load_pem_x509_csr(pem) if pem.lstrip().startswith(b"-----BEGIN") else \
            x509.load_der_x509_csr(base64.b64decode(pem, validate=True))
    except (ValueError, binascii.Error):
        raise Refused("not a certificate signing request (PEM, or DER in base64)") from None
    if not csr.is_signature_valid:
        raise Refused("the CSR is not signed by its own key")
    for ext in csr.extensions:
        v = ext.value
        if isinstance(v, x509.BasicConstraints) and v.ca or isinstance(v, x509.KeyUsage) and (
                v.key_cert_sign or v.crl_sign):
            raise Refused("the CSR asks for a CA certificate: only a client certificate is issued")
        if isinstance(v, x509.ExtendedKeyUsage) and list(v) != [ExtendedKeyUsageOID.CLIENT_AUTH]:
            raise Refused("the CSR asks for a server (or other) certificate: only a client certificate is issued")
        if isinstance(v, x509.SubjectAlternativeName):
            raise Refused("the CSR asks for names (a server's): only a client certificate is issued")
    key = csr.public_key()
    ok = (isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048 or isinstance(key, ed25519.Ed25519PublicKey)
          or isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"))
    if not ok:
        raise Refused("the CSR's key is not RSA of 2048 bits or more, EC P-256 or P-384, or Ed25519")
    return csr


def chosen_by(cert: x509.Certificate) -> dict[str, Any]:
    """The trust, rule and claims that chose a CI certificate (its URI name)."""
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    uri = next(u for u in names.get_values_for_type(x509.UniformResourceIdentifier) if u.startswith(CLAIMS_URN))
    doc: dict[str, Any] = json.loads(unquote(uri.removeprefix(CLAIMS_URN)))
    return doc


def job(claims: dict[str, Any]) -> str:
    """Who the job is, as the audit says it: org/app@refs/heads/main (GitLab: group/app@main)."""
    who = claims.get("repository") or claims.get("project_path") or claims.get("sub") or "?"
    return f"{who}@{claims.get('ref', '?')}"


def unit(trust: str, index: int) -> str:
    """The certificate's OU: which trust and rule chose it (`ci:TRUST:INDEX`), the key of the gateway's maps of
    CI roles, tenants and limits. A client's name never has a colon: no client's key can be a rule's."""
    return f"ci:{trust}:{int(index)}"


def common_name(trust: str, claims: dict[str, Any]) -> str:
    """The certificate's CN: `ci.TRUST.` and the job, cut to X.509's 64 characters with a digest when longer. It
    names the job in the gateway's audit (client=) and owns its builds: any character of a claim but those a
    repository, project or ref is written with becomes `_` (an issuer signs whatever claims it likes)."""
    cn = re.sub(r"[^A-Za-z0-9._/@:+=-]", "_", f"ci.{trust}.{job(claims)}")
    if len(cn) <= 64:
        return cn
    return cn[:51] + "~" + hashlib.sha256(cn.encode()).hexdigest()[:12]


def issue(csr: x509.CertificateSigningRequest, ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey,
          trust: Trust, index: int, rule: Rule, claims: dict[str, Any],
          now: dt.datetime | None = None) -> bytes:
    """The certificate and the intermediate after it (PEM): what the job presents."""
    now = now or dt.datetime.now(dt.timezone.utc)
    minutes = min(trust.minutes, MAX_MINUTES)
    # valid for `minutes` in all, from a little before now (a host whose clock is behind still takes it): never
    # a window longer than the trust says, whatever the skew
    start = now.replace(microsecond=0) - min(SKEW, dt.timedelta(minutes=minutes) / 4)
    chose = {"trust": trust.name, "rule": index, "tenant": rule.tenant, "role": rule.role, "job": job(claims),
             "claims": {k: claims.get(k) for k in sorted(rule.claims)}}
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, CI_ORG),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit(trust.name, index)),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name(trust.name, claims))])
    key = csr.public_key()
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
            .public_key(key).serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(min(start + dt.timedelta(minutes=minutes), not_after(ca_cert)))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=isinstance(key, rsa.RSAPublicKey), data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(
                CLAIMS_URN + quote(json.dumps(chose, sort_keys=True, separators=(",", ":")), safe=""))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM)
