"""The gateway's audit trail: one line per gRPC call (haproxy.cfg's log-format), read back into typed records.
Docker keeps it (json-file, root-only, rotated at 5 x 20 MB); `docker logs --timestamps` gives each line the time
it was written, which is when the call ended."""
from __future__ import annotations

import re
from dataclasses import dataclass
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
        return dict(vars(self))   # (its fields are plain values: asdict's deep copy costs a 24 h audit a second)


# (a week of a busy gateway is hundreds of thousands of lines: times are rewritten as text, not parsed by strptime)
_MONTHS = {m: f"{i:02d}" for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                                "Nov", "Dec"), start=1)}
_HAPROXY_TIME = re.compile(r"(\d\d)/([A-Z][a-z]{2})/(\d{4}):((\d\d):(\d\d):(\d\d)\.\d{3})")
_DOCKER_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?")


def _haproxy_time(text: str) -> str:
    """01/Dec/2026:18:00:54.239 (the gateway runs in UTC) -> ISO 8601, as datetime's isoformat writes it."""
    m = _HAPROXY_TIME.fullmatch(text)
    if m is None or m[2] not in _MONTHS:
        raise ValueError(text)
    if not (1 <= int(m[1]) <= 31 and int(m[5]) < 24 and int(m[6]) < 60 and int(m[7]) < 61):
        raise ValueError(text)
    return f"{m[3]}-{_MONTHS[m[2]]}-{m[1]}T{m[4]}+00:00"


def _docker_time(text: str) -> str | None:
    """Docker's receipt time (2026-12-07T14:03:58.000099999Z, UTC) to the millisecond, as isoformat writes it."""
    m = _DOCKER_TIME.match(text)
    if m is None:
        return None
    return f"{m[1]}.{((m[2] or '') + '000')[:3]}+00:00"


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
        ended = _docker_time(g["logged"])
        try:
            started = _haproxy_time(g["start"])
        except ValueError:
            continue
        method = _UNESCAPE.sub(r"\1", g["method"]) if "\\" in g["method"] else g["method"]
        out.append(AuditLine(ended or started, started, g["client"],
                             g["role"], method, g["result"], int(g["status"]), int(g["ms"]),
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
