"""The gateway's audit trail: one line per gRPC call (haproxy.cfg's log-format), read back into typed records.
Docker keeps it (json-file, root-only, rotated at 5 x 20 MB); `docker logs --timestamps` gives each line the time
it was written, which is when the call ended."""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass
from typing import Any

# (addr= since the gateway of 2026-12: older lines have none; a method's `"`, `\` and `]` come escaped with `\`)
_LINE = re.compile(r"(?P<logged>\S+) (?P<start>\S+) client=(?P<client>\S*) (?:addr=(?P<addr>\S*) )?"
                   r'role=(?P<role>\S*) method="(?P<method>(?:[^"\\]|\\.)*)" result=(?P<result>\S+) '
                   r"status=(?P<status>-?\d+) ms=(?P<ms>-?\d+) "
                   r"in=(?P<bytes_in>\d+) out=(?P<bytes_out>\d+) term=(?P<term>\S+)(?: waited=(?P<waited>\S+))?"
                   r"(?: ref=(?P<ref>\S+) session=(?P<session>\S+))?(?: tenant=(?P<tenant>\S+))?")
SOLVE = "/moby.buildkit.v1.Control/Solve"
# ownership.lua's line when a Solve passes its check: the build ref is its client's from then on (the call's own
# line comes when it ends)
SOLVE_STARTED = "solve started"
_START = re.compile(rf"\S+ {SOLVE_STARTED} client=(?P<client>\S+) ref=(?P<ref>\S+)")

_UNESCAPE = re.compile(r"\\(.)")


@dataclass
class AuditLine:
    ended: str           # ISO 8601 (UTC), when the call ended
    started: str         # ISO 8601 (UTC), when the request came in
    client: str          # the certificate's CN
    role: str
    method: str          # /package.Service/Method
    result: str          # ok, denied
    status: int          # HTTP status
    ms: int              # duration
    bytes_in: int
    bytes_out: int
    term: str            # HAProxy's termination state (-- is a clean end)
    waited_ms: int = 0   # how long a Solve waited for its client's build limit (included in ms)
    tenant: str = ""     # the tenant whose buildkitd served it (empty: an inventory without tenants)
    address: str = ""    # the client's address as the gateway saw it (empty on lines of older gateways)
    ref: str = ""        # the build ref the call named, once checked (Solve, Status, LLBBridge); empty: none

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def _haproxy_time(text: str) -> str:
    """01/Dec/2026:18:00:54.239 (the gateway runs in UTC) -> ISO 8601."""
    t = dt.datetime.strptime(text, "%d/%b/%Y:%H:%M:%S.%f").replace(tzinfo=dt.timezone.utc)
    return t.isoformat(timespec="milliseconds")


def parse_audit(text: str) -> list[AuditLine]:
    """`docker logs --timestamps` of the gateway; lines that are not calls are skipped: HAProxy's notices, and
    connections that ended before any request (a refused handshake, a failover proxy's health check)."""
    out = []
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        g = m.groupdict()
        if not g["method"].startswith("/"):
            continue
        ended = dt.datetime.fromisoformat(g["logged"][:26].rstrip("Z") + "+00:00") if "T" in g["logged"] else None
        try:
            started = _haproxy_time(g["start"])
        except ValueError:
            continue
        out.append(AuditLine(ended.isoformat(timespec="milliseconds") if ended else started, started, g["client"],
                             g["role"], _UNESCAPE.sub(r"\1", g["method"]), g["result"], int(g["status"]), int(g["ms"]),
                             int(g["bytes_in"]), int(g["bytes_out"]), g["term"],
                             int(g["waited"]) if (g["waited"] or "").isdigit() else 0, g["tenant"] or "",
                             g["addr"] or "", "" if g["ref"] in (None, "-") else g["ref"]))
    return out


def build_owners(text: str) -> dict[str, str]:
    """Build ref -> the client whose Solve started it, from the same log: the start lines (a build still running)
    and the Solve lines of builds that ended."""
    owners = {m["ref"]: m["client"] for m in map(_START.match, text.splitlines()) if m}
    owners.update({c.ref: c.client for c in parse_audit(text) if c.ref and c.method == SOLVE})
    return owners
