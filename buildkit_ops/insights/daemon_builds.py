"""The builds of each buildkitd of a host (the fleet's and each tenant's: every daemon keeps its own history),
each given to a client among the Solve calls of that daemon's own clients: a tenant's build is never put down to
another tenant's client."""
from __future__ import annotations

from buildkit_ops.insights.builds import Build, attribute, history_snippet, parse
from buildkit_ops.inventory.daemons import Daemon
from buildkit_ops.inventory.model import DEFAULT_TENANT
from buildkit_ops.roles.gateway.exports import AuditLine


def section(i: int) -> str:
    """The facts section of the i-th daemon's history (the fleet's keeps the name it always had)."""
    return "history" if i == 0 else f"history{i}"


def snippets(daemons: list[Daemon]) -> list[str]:
    return [history_snippet(d.ctl, section(i)) for i, d in enumerate(daemons)]


def tenant_of(call: AuditLine) -> str:
    """Whose daemon served a call, as the gateway logged it: a gateway of an inventory with tenants names it in
    every line; one without tenants had the fleet's daemon only."""
    return call.tenant or DEFAULT_TENANT


def read(daemons: list[Daemon], got: dict[str, str], calls: list[AuditLine],
         owners: dict[str, str] | None = None) -> dict[str, list[Build]]:
    """Daemon label -> its builds (oldest first), each with its client where the audit trail tells (`owners`:
    build ref -> client, as the gateway logged it; a ref is one build's, of whichever daemon)."""
    out = {}
    for i, d in enumerate(daemons):
        builds = parse(got.get(section(i), ""))
        attribute(builds, [c for c in calls if tenant_of(c) == d.label], owners)
        out[d.label] = builds
    return out
