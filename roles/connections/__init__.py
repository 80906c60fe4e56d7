"""connections: takes away the connection log that versions before the gateway kept on each build host (a
`conntrack -E` recorder service, its logrotate file and its log), which gave each build to the client whose
source address had connections open when it started. The gateway's audit trail names the certificate of every
Solve call instead, so two clients behind one address are two clients, and the recorder has nothing left to do.
The conntrack and logrotate packages it needed stay installed: other software may use them."""
from __future__ import annotations

from dataclasses import dataclass, field

from buildkit_ops.engine.contract import Context, Role, Step
from buildkit_ops.engine.render import FileState
from buildkit_ops.engine.shell import command
from buildkit_ops.inventory import BuildHost

UNIT = "buildkit-ops-connections.service"
LEFTOVERS = (f"/etc/systemd/system/{UNIT}", "/etc/logrotate.d/buildkit-ops-connections",
             "/var/lib/buildkit-ops/connections.log", "/var/lib/buildkit-ops/connections.log.1")


@dataclass
class ConnectionsFacts:
    found: list[str] = field(default_factory=list)      # the LEFTOVERS present on the host


def parse(sections: dict[str, str]) -> ConnectionsFacts:
    return ConnectionsFacts((sections.get("conn_leftovers") or "").split())


def plan(facts: ConnectionsFacts) -> list[Step]:
    if not facts.found:
        return [Step("connections", "connection log", False, "none (the gateway's audit trail names clients)")]
    script = (f"systemctl disable --now {UNIT} >/dev/null 2>&1 || true\n"
              + command("rm", "-f", *LEFTOVERS) + "\n"
              + "rmdir /var/lib/buildkit-ops 2>/dev/null || true\nsystemctl daemon-reload\n")
    return [Step("connections", "connection log", True, "removed: the gateway's audit trail names each build's "
                                                        "client now", script=script)]


class ConnectionsRole(Role[BuildHost, None, ConnectionsFacts]):
    name = "connections"

    parse = staticmethod(parse)

    def plan(self, ctx: Context[BuildHost, None], facts: ConnectionsFacts,
             files: dict[str, FileState]) -> list[Step]:
        return plan(facts)


ROLE = ConnectionsRole()
