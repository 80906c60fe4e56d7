"""connections: a log of which client address each connection to the BuildKit port came from, and when.

BuildKit's build history records what was built, not by whom: the client's certificate is checked and
forgotten. The kernel's connection tracking sees every connection with its source and lifetime; a small
service (record.sh: `conntrack -E` into awk) keeps one line per connection (source, start, stop), and
insights.py gives each build to the client whose connections were open when it started. Rotated weekly by logrotate."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine.contract import Context, Role, Step, Templates
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.steps import package_step, unit_steps
from buildkit_ops.inventory import BuildHost

HERE = Path(__file__).parent
UNIT = "buildkit-ops-connections"
TOOLS = ("conntrack", "logrotate")      # (Debian's and Ubuntu's package names too)
SERVICE = f"/etc/systemd/system/{UNIT}.service"
LOGROTATE = "/etc/logrotate.d/buildkit-ops-connections"


@dataclass
class ConnectionsFacts:
    tools: list[str] = field(default_factory=list)
    service: list[str] = field(default_factory=list)    # is-enabled, is-active

    @property
    def running(self) -> bool:
        return self.service[:2] == ["enabled", "active"]


def parse(sections: dict[str, str]) -> ConnectionsFacts:
    return ConnectionsFacts((sections.get("conn_tools") or "").split(), (sections.get("conn_service") or "").split())


def render(host: BuildHost, templates: Templates | None = None) -> list[File]:
    templates = templates or Templates(HERE / "templates")
    script = (HERE / "record.sh").read_text()
    unit = templates.render(f"{UNIT}.service.j2", "systemd", port=host.buildkit.port, command=["/bin/sh", "-c", script])
    return [File(SERVICE, unit.encode()), File(LOGROTATE, templates.path(f"{UNIT}.logrotate").read_bytes())]


def plan(facts: ConnectionsFacts, files: list[File], states: dict[str, FileState]) -> list[Step]:
    missing = [t for t in TOOLS if t not in facts.tools]
    return [package_step("connections", "conntrack and logrotate", missing),
            *unit_steps("connections", files, states, f"{UNIT}.service", facts.running, "connection log service",
                        "running")]


class ConnectionsRole(Role[BuildHost, None, ConnectionsFacts]):
    name = "connections"

    parse = staticmethod(parse)

    def files(self, ctx: Context[BuildHost, None]) -> list[File]:
        return render(ctx.target, self.templates)

    def plan(self, ctx: Context[BuildHost, None], facts: ConnectionsFacts,
             files: dict[str, FileState]) -> list[Step]:
        return plan(facts, self.managed(ctx), files)


ROLE = ConnectionsRole()
