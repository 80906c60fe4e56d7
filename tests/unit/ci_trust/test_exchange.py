"""The exchange end to end inside the issuer: over its unix socket, a job's token and CSR get a certificate, and a
refused one gets 403 and the reason; the issuer's keys come from its discovery document (fetched again once for a
kid they lack; an unreachable issuer or one whose document points elsewhere refuses every token); an audit line
names the job, never the token."""
from __future__ import annotations

import http.client
import json
import socket
import threading

import pytest
from cryptography import x509
from oidc_helpers import ISSUER, JWKS, RSA_KEY, TRUST, csr, jwk, root, token

from buildkit_ops.ci_trust import issuing, tokens
from buildkit_ops.ci_trust.exchange import Intermediate, audit_line, exchange
from buildkit_ops.ci_trust.keys import Keys
from buildkit_ops.ci_trust.server import Issuer

DISCOVERY = {"issuer": ISSUER, "jwks_uri": ISSUER + "/.well-known/jwks"}


class FakeIssuer:
    """The issuer's two documents, and how often each was fetched."""
    def __init__(self, jwks=JWKS, discovery=DISCOVERY, up=True):
        self.jwks, self.discovery, self.up, self.fetched = jwks, discovery, up, []

    def __call__(self, url, context):
        self.fetched.append(url)
        if not self.up:
            raise OSError("connection refused")
        return json.dumps(self.discovery if url.endswith("openid-configuration") else self.jwks).encode()


def setup(fetch):
    ca = root(1)
    cert, key = issuing.intermediate(ca.cert, ca.key, "github", 30)
    return {"github": TRUST}, {"github": Intermediate(cert, key)}, Keys(fetch), tokens.Spent()


def test_a_good_token_and_csr_get_a_certificate_and_an_audit_line_without_the_token():
    trusts, inters, keys, spent = setup(FakeIssuer())
    tok = token()
    out = exchange(trusts, inters, keys, spent, tok, csr())
    assert out.chain and x509.load_pem_x509_certificates(out.chain)[0].subject.rfc4514_string().startswith(
        "CN=ci.github.org/app@refs/heads/main")
    line = audit_line(out)
    assert '"job": "org/app@refs/heads/main"' in line and '"result": "issued"' in line and tok not in line


def test_a_kid_the_keys_lack_fetches_them_again_at_most_every_30_s():
    fake, now = FakeIssuer(), [1000.0]
    trusts, inters, _, spent = setup(fake)
    keys = Keys(fake, clock=lambda: now[0])
    assert exchange(trusts, inters, keys, spent, token(), csr()).chain
    fake.jwks = {"keys": [*JWKS["keys"], jwk(RSA_KEY, "rotated")]}
    assert exchange(trusts, inters, keys, spent, token(kid="rotated"), csr()).chain is None   # (fetched just now)
    now[0] += 31
    assert exchange(trusts, inters, keys, spent, token(kid="rotated"), csr()).chain    # (rotated: fetched again)
    out = exchange(trusts, inters, keys, spent, token(kid="nowhere"), csr())
    assert out.chain is None and "no key of the issuer has kid 'nowhere'" in out.audit["why"]
    assert len(fake.fetched) == 4     # discovery and keys, twice: not once more for "nowhere" within 30 s


@pytest.mark.parametrize("fake,says", [
    (FakeIssuer(up=False), "cannot be fetched (connection refused): no token of it is taken unchecked"),
    (FakeIssuer(discovery={**DISCOVERY, "jwks_uri": "https://evil.example/jwks"}), "names its keys elsewhere"),
    (FakeIssuer(discovery={**DISCOVERY, "issuer": "https://evil.example"}), "names another issuer"),
], ids=["unreachable", "keys elsewhere", "another issuer"])
def test_an_issuer_whose_keys_cannot_be_had_honestly_refuses_every_token(fake, says):
    out = exchange(*setup(fake), token(), csr())
    assert out.chain is None and says in out.audit["why"]


def test_a_token_of_an_issuer_no_trust_names_is_refused():
    out = exchange(*setup(FakeIssuer()), token(iss="https://gitlab.com"), csr())
    assert out.chain is None and out.audit["why"] == "no trust of this server takes tokens of issuer " \
                                                     "'https://gitlab.com'"


def post(path, body):
    class Unix(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(path)
    c = Unix("issuer")
    c.request("POST", "/v1/certificate", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    return r.status, json.loads(r.read())


def test_the_service_answers_on_its_unix_socket_only_to_root(tmp_path, capsys):
    trusts, inters, keys, _ = setup(FakeIssuer())
    path = str(tmp_path / "ci-issuer.sock")
    server = Issuer(path, trusts, inters, keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert oct((tmp_path / "ci-issuer.sock").stat().st_mode & 0o777) == "0o700"
        tok = token()
        status, doc = post(path, json.dumps({"token": tok, "csr": csr().decode()}))
        assert status == 200 and doc["certificate"].count("BEGIN CERTIFICATE") == 2
        status, doc = post(path, json.dumps({"token": tok, "csr": csr().decode()}))
        assert (status, doc) == (403, {"error": "the token was exchanged already (each token once)"})
        assert post(path, "{}")[0] == 400
        assert post(path, "x" * 20000)[0] == 413
    finally:
        server.shutdown()
        server.server_close()
    printed = capsys.readouterr().out
    assert printed.count("ci-exchange ") == 2 and tok not in printed
