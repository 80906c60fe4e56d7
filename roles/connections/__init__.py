"""connections: a log of which client address each connection to the BuildKit port came from, and when.

BuildKit's build history records what was built, not by whom: the client's certificate is checked and
forgotten. The kernel's connection tracking sees every connection with its source and lifetime; a small
service (record.sh: `conntrack -E` into awk) keeps one line per connection (source, start, stop), and
insights.py gives each build to the client whose connections were open when it started. Rotated weekly by logrotate."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_ops.engine.contract import Context, Role, Step, unit_steps
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.render import render as render_template
from buildkit_ops.inventory import BuildHost

HERE = Path(__file__).parent
UNIT = "buildkit-ops-connections"
TOOLS = ("conntrack", "logrotate")      # (Debian's and Ubuntu's package names too)
LOG = "/var/lib/buildkit-ops/connections.log"   # (record.sh and the logrotate file write the same path)
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


def render(host: BuildHost) -> list[File]:
    script = (HERE / "record.sh").read_text()
    unit = render_template(HERE / "templates" / f"{UNIT}.service.j2", "systemd", port=host.buildkit.port,
                           command=["/bin/sh", "-c", script])
    return [File(SERVICE, unit.encode()),
            File(LOGROTATE, (HERE / "templates" / f"{UNIT}.logrotate").read_bytes())]


def plan(facts: ConnectionsFacts, files: list[File], states: dict[str, FileState]) -> list[Step]:
    steps = []
    missing = [t for t in TOOLS if t not in facts.tools]
    if missing:
        steps.append(Step("connections", "conntrack and logrotate", True, f"install {' '.join(missing)}",
                          script="export DEBIAN_FRONTEND=noninteractive\napt-get update -qq\n"
                                 f"apt-get install -y -qq --no-install-recommends {' '.join(missing)}\n"))
    else:
        steps.append(Step("connections", "conntrack and logrotate", False, "installed"))
    return steps + unit_steps("connections", files, states, f"{UNIT}.service", facts.running,
                              "connection log service", "running")


class ConnectionsRole(Role):
    name = "connections"

    def parse(self, sections: dict[str, str]) -> ConnectionsFacts:
        return parse(sections)

    def files(self, ctx: Context) -> list[File]:
        return render(ctx.host)

    def plan(self, ctx: Context, facts: Any, files: dict[str, FileState]) -> list[Step]:
        return plan(facts, self.managed(ctx), files)


ROLE = ConnectionsRole()
