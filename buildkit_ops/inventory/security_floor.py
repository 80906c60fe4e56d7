"""The security floor of a BuildKit server that several clients share: the releases whose fixes matter when
clients are not the same person (from BuildKit's release notes, as cited in the project's issue on current
BuildKit). Below it, provision refuses a server with more than one client unless the host says
`allow_outdated_buildkit: true`, and status warns on any."""
from __future__ import annotations

import re

# (the release that fixed it, what it fixed)
FIXES = [("v0.31.2", "a malicious client could bypass the validation of local-source uploads"),
         ("v0.33.1", "blob digests are verified, to protect shared caches"),
         ("v0.34.2", "GHSA-w26x-xg27-7qjc: a client of the control API could set xattrs outside the state directory "
                     "(a path to root on the host); GHSA-2fqp-xg6f-v7gj: git resolver cache poisoning crashed the "
                     "daemon")]
FLOOR = FIXES[-1][0]


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"[0-9]+", version)[:3])


def missing(version: str) -> list[tuple[str, str]]:
    """The fixes a BuildKit version (vX.Y.Z) lacks."""
    return [(v, what) for v, what in FIXES if _key(version) < _key(v)]


def describe(version: str) -> str:
    return "; ".join(f"{v}: {what}" for v, what in missing(version))
