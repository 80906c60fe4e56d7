"""A CI job's OIDC token, checked against its issuer's keys with PyJWT (no hand-written JOSE): the signature by a
key of the issuer's JWKS named by the token's `kid`, with the algorithm that key is for (never `none`, never an
HMAC: a token "signed" with the issuer's public key as an HMAC secret is refused before any check), then `iss`
and `aud` exactly, `exp`, `nbf` and `iat` with a small skew, and `jti` once (a token exchanged is spent until it
expires)."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

import jwt

from .rules import Trust

SKEW = 60                     # seconds of clock difference allowed between the issuer and the build host
MAX_TOKEN = 8192              # bytes: GitHub's and GitLab's tokens are about 1 to 2 KB
# the algorithms a key of each type (and curve) signs with; an HMAC is never one
ALGORITHMS = {("RSA", None): ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
              ("EC", "P-256"): ("ES256",), ("EC", "P-384"): ("ES384",), ("EC", "P-521"): ("ES512",),
              ("OKP", "Ed25519"): ("EdDSA",)}


class Refused(Exception):
    """The token cannot be exchanged: the message says why (it goes to the job, and to the audit)."""


class UnknownKey(Refused):
    """No key of the JWKS has the token's kid: the issuer may have rotated its keys (fetch them again, once)."""


class Spent:
    """The `jti` of tokens already exchanged, each kept until its token expires; with a file, also across the
    issuer's restarts (a line per token, appended before its certificate goes out; read back at start)."""

    def __init__(self, path: Path | None = None) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._path = path
        if path is not None and path.exists():
            now = time.time()
            for line in path.read_text().splitlines():
                try:
                    doc = json.loads(line)
                    if float(doc["exp"]) + SKEW >= now:
                        self._seen[(str(doc["iss"]), str(doc["jti"]))] = float(doc["exp"])
                except (ValueError, KeyError, TypeError):
                    continue
            self._rewrite()

    def _rewrite(self) -> None:
        """The file again with only the unexpired (at start: it never grows past a token lifetime's worth)."""
        assert self._path is not None
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text("".join(json.dumps({"iss": i, "jti": j, "exp": e}) + "\n" for (i, j), e in self._seen.items()))
        os.chmod(tmp, 0o600)
        tmp.replace(self._path)

    def spend(self, issuer: str, jti: str, expires: float) -> bool:
        """True the first time; False for a token already exchanged."""
        now = time.time()
        with self._lock:
            for k in [k for k, exp in self._seen.items() if exp + SKEW < now]:
                del self._seen[k]
            if (issuer, jti) in self._seen:
                return False
            self._seen[(issuer, jti)] = expires
            if self._path is not None:
                with open(self._path, "a") as f:
                    f.write(json.dumps({"iss": issuer, "jti": jti, "exp": expires}) + "\n")
            return True


def key_for(jwks: dict[str, Any], kid: str | None, alg: str) -> jwt.PyJWK:
    """The JWKS's key of that kid, if it is a signing key for that algorithm."""
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("kid") == kid] if kid else []
    if not keys:
        raise UnknownKey(f"no key of the issuer has kid {kid!r}")
    k = keys[0]
    kty, crv = str(k.get("kty")), k.get("crv") if k.get("kty") != "RSA" else None
    allowed = ALGORITHMS.get((kty, str(crv) if crv is not None else None), ())
    if alg not in allowed or k.get("alg", alg) != alg or k.get("use", "sig") != "sig":
        raise Refused(f"the token says alg {alg}, which its key {kid!r} ({k.get('kty')}) is not for")
    try:
        return jwt.PyJWK(k, algorithm=alg)
    except jwt.PyJWTError as e:
        raise Refused(f"the issuer's key {kid!r} cannot be used: {e}") from None


def verify(token: str, trust: Trust, jwks: dict[str, Any], spent: Spent) -> dict[str, Any]:
    """The token's claims, once every check passed; else Refused (UnknownKey: the kid is not in `jwks`)."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 2:
        raise Refused("not a signed JWT")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise Refused("not a signed JWT") from None
    alg = header.get("alg")
    if not isinstance(alg, str) or alg.lower() == "none" or alg.upper().startswith("HS") or \
            not any(alg in algs for algs in ALGORITHMS.values()):
        raise Refused(f"alg {alg!r} is not a signature with the issuer's published keys")
    key = key_for(jwks, header.get("kid"), alg)
    try:
        claims = jwt.decode(token, key.key, algorithms=[alg], audience=trust.audience, issuer=trust.issuer,
                            leeway=SKEW, options={"require": ["iss", "aud", "exp", "iat", "jti"]})
    except jwt.ExpiredSignatureError:
        raise Refused("the token has expired") from None
    except jwt.ImmatureSignatureError:
        raise Refused("the token is not valid yet (nbf or iat in the future)") from None
    except jwt.InvalidAudienceError:
        raise Refused(f"the token's aud is not {trust.audience!r}") from None
    except jwt.InvalidIssuerError:
        raise Refused(f"the token's iss is not {trust.issuer}") from None
    except jwt.InvalidSignatureError:
        raise Refused("the token's signature does not verify with the issuer's key") from None
    except jwt.PyJWTError as e:
        raise Refused(f"the token cannot be used: {e}") from None
    if float(claims["iat"]) > time.time() + SKEW:
        raise Refused("the token is not valid yet (nbf or iat in the future)")
    if not spent.spend(trust.issuer, str(claims["jti"]), float(claims["exp"])):
        raise Refused("the token was exchanged already (each token once)")
    return claims
