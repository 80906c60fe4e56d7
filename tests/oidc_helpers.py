"""Made-up OIDC issuers, tokens, CAs and CSRs for the CI trust's tests: real keys, real signatures."""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
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


# --- the lab's OIDC provider: discovery and JWKS over HTTPS with a CA of its own, as GitHub's and GitLab's ---

def github_claims(issuer, audience, repository="org/app", ref="refs/heads/main", protected=True, **over):
    """A token's claims as GitHub Actions writes them (docs.github.com, "About security hardening with OpenID
    Connect": the example token)."""
    now = int(time.time())
    owner = repository.split("/")[0]
    base = {"jti": str(uuid.uuid4()), "sub": f"repo:{repository}:ref:{ref}", "aud": audience, "ref": ref,
            "sha": "example-sha", "repository": repository, "repository_owner": owner,
            "repository_owner_id": "65", "repository_id": "7", "repository_visibility": "private",
            "run_id": "1", "run_number": "1", "run_attempt": "1", "actor": "octocat", "actor_id": "12",
            "workflow": "build", "workflow_ref": f"{repository}/.github/workflows/build.yml@{ref}",
            "workflow_sha": "example-sha", "head_ref": "", "base_ref": "", "event_name": "push",
            "ref_type": "branch", "ref_protected": "true" if protected else "false",
            "job_workflow_ref": f"{repository}/.github/workflows/build.yml@{ref}",
            "runner_environment": "self-hosted", "iss": issuer, "nbf": now - 5, "exp": now + 300, "iat": now}
    return {**base, **over}


def gitlab_claims(issuer, audience, project="group/app", ref="main", protected=True, **over):
    """A token's claims as GitLab CI writes them (docs.gitlab.com, "OpenID Connect (OIDC) Authentication Using ID
    Tokens": the example payload)."""
    now = int(time.time())
    base = {"namespace_id": "72", "namespace_path": project.split("/")[0], "project_id": "20",
            "project_path": project, "user_id": "1", "user_login": "sample-user", "user_email": "sample@example.test",
            "pipeline_id": "574", "pipeline_source": "push", "job_id": "302", "ref": ref, "ref_type": "branch",
            "ref_path": f"refs/heads/{ref}", "ref_protected": "true" if protected else "false",
            "runner_id": 1, "runner_environment": "self-hosted", "sha": "example-sha", "project_visibility": "private",
            "ci_config_ref_uri": f"gitlab.example.test/{project}//.gitlab-ci.yml@refs/heads/{ref}",
            "jti": str(uuid.uuid4()), "iss": issuer, "iat": now, "nbf": now - 5, "exp": now + 300,
            "sub": f"project_path:{project}:ref_type:branch:ref:{ref}", "aud": audience}
    return {**base, **over}


class Provider:
    """OIDC issuers under one HTTPS server (https://ADDRESS:PORT/NAME, each with its discovery document and JWKS:
    an RSA and an EC key), served from this process on an address of the lab's network, with a CA of its own
    (`ca_pem`, what a trust's ca_file holds)."""

    def __init__(self, address, names=("github", "gitlab", "other")):
        import http.server
        import ipaddress
        import ssl
        import tempfile
        import threading

        self.address = address
        self.keys = {n: {"rsa1": rsa.generate_private_key(public_exponent=65537, key_size=2048),
                         "ec1": ec.generate_private_key(ec.SECP256R1())} for n in names}
        ca_key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "the lab's OIDC provider CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=2))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .sign(ca_key, hashes.SHA256()))
        key = ec.generate_private_key(ec.SECP256R1())
        leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, address)]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=2))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(address))]),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_pem = ca.public_bytes(serialization.Encoding.PEM)
        self._dir = tempfile.mkdtemp(prefix="bkops-oidc-")
        crt, pem = f"{self._dir}/leaf.crt", f"{self._dir}/leaf.key"
        with open(crt, "wb") as f:
            f.write(leaf.public_bytes(serialization.Encoding.PEM))
        with open(pem, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
        self.fetched = []      # the paths asked for (discovery, keys), in order
        provider = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                provider.fetched.append(self.path)
                body = provider.document(self.path)
                self.send_response(200 if body is not None else 404)
                data = json.dumps(body or {"error": "not found"}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((address, 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(crt, pem)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def issuer(self, name):
        return f"https://{self.address}:{self.port}/{name}"

    def document(self, path):
        name, _, rest = path.strip("/").partition("/")
        if name not in self.keys:
            return None
        if rest == ".well-known/openid-configuration":
            return {"issuer": self.issuer(name), "jwks_uri": self.issuer(name) + "/keys",
                    "id_token_signing_alg_values_supported": ["RS256", "ES256"]}
        if rest == "keys":
            return {"keys": [{**jwk(k, kid), "alg": "RS256" if kid.startswith("rsa") else "ES256"}
                             for kid, k in self.keys[name].items()]}
        return None

    def token(self, name, claims, kid="rsa1", alg=None):
        alg = alg or ("RS256" if kid.startswith("rsa") else "ES256")
        return jwt.encode(claims, self.keys[name][kid], algorithm=alg, headers={"kid": kid})

    def close(self):
        self.server.shutdown()
        self.server.server_close()


# --- tokens no issuer would sign: for the refusals ---

def hs256_with_public_key(provider, claims):
    """The classic: an HMAC 'signature' keyed with the issuer's public key (PEM), for an issuer that would take
    the key as a secret."""
    pub = provider.keys["github"]["rsa1"].public_key().public_bytes(serialization.Encoding.PEM,
                                                                    serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa1"}).encode())
    body = b64(json.dumps(claims).encode())
    sig = hmac.new(pub, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(sig)}"


def alg_none(claims):
    def b64(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
    return f"{b64(json.dumps({'alg': 'none', 'kid': 'rsa1'}).encode())}.{b64(json.dumps(claims).encode())}."


def unknown_kid(claims):
    """Signed by a key its issuer's JWKS does not publish (kid `rsa9`)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "rsa9"})
