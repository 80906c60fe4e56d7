"""Made-up OIDC issuers, tokens, CAs and CSRs for the CI trust's tests: real keys, real signatures."""
from __future__ import annotations

import datetime as dt
import json
import time
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from buildkit_ops.ci_trust import rules
from buildkit_ops.pki import certs

ISSUER = "https://token.actions.githubusercontent.com"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def jwk(key, kid):
    if isinstance(key, rsa.RSAPrivateKey):
        d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    else:
        d = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    return {**d, "kid": kid, "use": "sig"}


JWKS = {"keys": [jwk(RSA_KEY, "rsa1"), jwk(EC_KEY, "ec1")]}
TRUST = rules.Trust("github", ISSUER, "buildkit-ops", (
    rules.Rule({"repository": "org/app", "ref": "refs/heads/main"}, tenant="red"),
    rules.Rule({"repository": "org/app", "ref": "refs/tags/v*", "ref_protected": "true"}, role="developer")))


def claims(**over):
    now = int(time.time())
    base = {"iss": ISSUER, "aud": "buildkit-ops", "iat": now, "nbf": now, "exp": now + 300,
            "jti": str(uuid.uuid4()), "sub": "repo:org/app:ref:refs/heads/main", "repository": "org/app",
            "repository_owner": "org", "ref": "refs/heads/main", "ref_protected": "true", "ref_type": "branch"}
    return {**base, **over}


def token(key=RSA_KEY, kid="rsa1", alg="RS256", **over):
    return jwt.encode(claims(**over), key, algorithm=alg, headers={"kid": kid})


def root(path_length):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
            .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return certs.CA(cert, key)


def csr(key=None, extensions=()):
    key = key or ec.generate_private_key(ec.SECP256R1())
    b = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                                                          "job")]))
    for ext in extensions:
        b = b.add_extension(ext, critical=False)
    return b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
