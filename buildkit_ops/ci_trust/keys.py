"""An issuer's signing keys: its discovery document (`ISSUER/.well-known/openid-configuration`, whose `issuer`
must be the issuer itself) names its JWKS, fetched over HTTPS (the system's CAs, or the trust's `ca_file`), kept
an hour, and fetched again at once when a token names a key it lacks (an issuer rotates its keys), at most every
30 s. When the issuer cannot be reached and no keys are kept, the token is refused: never trusted unchecked."""
from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from .rules import Trust
from .tokens import Refused

KEEP = 3600          # seconds a JWKS is used before it is fetched again
AGAIN = 30           # at most this often when a token names a key the JWKS lacks
TIMEOUT = 10
MAX_DOCUMENT = 1 << 20

Fetch = Callable[[str, "ssl.SSLContext"], bytes]


def https_get(url: str, context: ssl.SSLContext) -> bytes:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    with urllib.request.urlopen(req, timeout=TIMEOUT, context=context) as r:   # noqa: S310 (https only)
        return bytes(r.read(MAX_DOCUMENT + 1)[:MAX_DOCUMENT])


class Keys:
    """Each trust's issuer's JWKS, as tokens.verify takes it."""

    def __init__(self, fetch: Fetch = https_get, clock: Callable[[], float] = time.monotonic):
        self._fetch, self._clock = fetch, clock
        self._kept: dict[str, tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def jwks(self, trust: Trust, again: bool = False) -> dict[str, Any]:
        """The issuer's keys: those kept unless older than KEEP (or `again`: a token named a key they lack, and
        the last fetch is older than AGAIN)."""
        now = self._clock()
        with self._lock:
            kept = self._kept.get(trust.issuer)
        if kept and now - kept[0] < (AGAIN if again else KEEP):
            return kept[1]
        try:
            fresh = self._load(trust)
        except (OSError, ValueError, Refused) as e:
            if kept and not again:
                return kept[1]
            raise Refused(f"the keys of {trust.issuer} cannot be fetched ({e}): no token of it is taken "
                          f"unchecked") from None
        with self._lock:
            self._kept[trust.issuer] = (now, fresh)
        return fresh

    def _load(self, trust: Trust) -> dict[str, Any]:
        context = ssl.create_default_context(cafile=trust.ca_file)
        doc = json.loads(self._fetch(trust.issuer + "/.well-known/openid-configuration", context))
        if not isinstance(doc, dict) or doc.get("issuer") != trust.issuer:
            raise Refused(f"the discovery document of {trust.issuer} names another issuer")
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str) or urlsplit(uri).scheme != "https" or \
                urlsplit(uri).netloc != urlsplit(trust.issuer).netloc:
            raise Refused(f"the discovery document of {trust.issuer} names its keys elsewhere ({uri!r})")
        jwks = json.loads(self._fetch(uri, context))
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise Refused(f"{uri} is not a JWKS")
        return jwks
