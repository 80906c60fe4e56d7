"""The issuer's HTTP service on a build host: `POST /v1/certificate` with {"token": JWT, "csr": PEM} answers 200
{"certificate": PEM chain} (with `Accept: application/pem-certificate-chain`, the chain itself) or 403
{"error": why}; anything else 404 or 405. It listens on a unix socket only: the
gateway (HAProxy, server-only TLS on its own port) is what faces the network, with its limits. One audit line per
exchange on stdout (the journal). Run: python3 -m ci_trust.server CONFIG (the role writes CONFIG, 0600 root)."""
from __future__ import annotations

import json
import os
import socketserver
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import tokens
from .exchange import Intermediate, audit_line, exchange
from .keys import Keys
from .rules import Rule, Trust

MAX_BODY = 16384
PEM_CHAIN = "application/pem-certificate-chain"   # RFC 8555's media type


def load_config(path: Path) -> tuple[dict[str, Trust], dict[str, Intermediate], str, Path | None]:
    """The trusts (as the inventory checked them), each one's intermediate, the socket to listen on, and the file
    of spent tokens."""
    doc = json.loads(path.read_text())
    trusts, intermediates = {}, {}
    for t in doc["trusts"]:
        rules = tuple(Rule(r["claims"], r.get("tenant"), r.get("role", "developer"), r.get("builds", 0),
                           r.get("queue", 0)) for r in t["rules"])
        trusts[t["name"]] = Trust(t["name"], t["issuer"], t["audience"], rules, t.get("minutes", 60), (),
                                  t.get("ca_file"))
        key = serialization.load_pem_private_key(Path(t["key"]).read_bytes(), None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise SystemExit(f"{t['key']}: not the EC key of an intermediate")
        intermediates[t["name"]] = Intermediate(x509.load_pem_x509_certificate(Path(t["cert"]).read_bytes()), key)
    return trusts, intermediates, doc["socket"], Path(doc["spent"]) if doc.get("spent") else None


class Issuer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, socket_path: str, trusts: dict[str, Trust], intermediates: dict[str, Intermediate],
                 keys: Keys | None = None, spent: Path | None = None):
        self.trusts, self.intermediates = trusts, intermediates
        self.keys, self.spent = keys or Keys(), tokens.Spent(spent)
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        old = os.umask(0o077)   # (the gateway runs as root: nobody else may connect)
        try:
            super().__init__(socket_path, Handler)
        finally:
            os.umask(old)


class Handler(BaseHTTPRequestHandler):
    server: Issuer
    protocol_version = "HTTP/1.1"

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        self._send(status, "application/json", json.dumps(doc).encode() + b"\n")

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path != "/v1/certificate":
            return self._answer(404, {"error": "POST /v1/certificate is all there is"})
        try:
            length = int(self.headers.get("Content-Length") or -1)
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            return self._answer(413, {"error": f"a request is a token and a CSR, at most {MAX_BODY} bytes"})
        try:
            doc = json.loads(self.rfile.read(length))
            token, csr = doc["token"], doc["csr"].encode()
            if not isinstance(token, str):
                raise TypeError
        except (ValueError, KeyError, TypeError, AttributeError):
            return self._answer(400, {"error": 'send {"token": JWT, "csr": PEM}'})
        outcome = exchange(self.server.trusts, self.server.intermediates, self.server.keys, self.server.spent,
                           token, csr)
        # (the job's address as the gateway saw it: only the gateway can reach this socket)
        outcome.audit["addr"] = (self.headers.get("X-Forwarded-For") or "-")[:64]
        print(audit_line(outcome), flush=True)
        if outcome.chain is None:
            return self._answer(403, {"error": outcome.audit.get("why", "refused")})
        if PEM_CHAIN in (self.headers.get("Accept") or ""):   # (a shell snippet: the chain as it is written)
            return self._send(200, PEM_CHAIN, outcome.chain)
        return self._answer(200, {"certificate": outcome.chain.decode()})

    def do_GET(self) -> None:
        self._answer(405, {"error": "POST /v1/certificate"})

    def log_message(self, format: str, *args: Any) -> None:   # (the audit line says what matters)
        pass


def main(argv: list[str]) -> None:
    trusts, intermediates, socket_path, spent = load_config(Path(argv[1]))
    with Issuer(socket_path, trusts, intermediates, spent=spent) as server:
        server.serve_forever()


if __name__ == "__main__":
    main(sys.argv)
