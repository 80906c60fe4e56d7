"""engine: Docker Engine and Compose v2 on the host, installed from the
distribution's packages when missing (Debian, Ubuntu); anything else stops
with a clear message before a single change."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine.contract import Context, PlanError, Role, Step
from buildkit_ops.engine.render import FileState
from buildkit_ops.engine.steps import package_step
from buildkit_ops.inventory import BuildHost

SUPPORTED = ("debian", "ubuntu")


class UnsupportedHost(PlanError):
    pass


@dataclass
class EngineFacts:
    os_id: str = "unknown"
    version: str = "0"
    like: list[str] = field(default_factory=list)
    docker: str = ""          # server version, empty when missing
    compose: str = ""         # Compose version, empty when missing

    @property
    def ready(self) -> bool:
        return bool(self.docker) and self.compose.startswith(("2.", "v2."))


def parse(sections: dict[str, str]) -> EngineFacts:
    os_id, version, *like = (sections.get("os") or "unknown 0").split() + ["", ""]
    return EngineFacts(os_id or "unknown", version or "0", [x for x in like if x],
                       sections.get("docker", ""), sections.get("compose", ""))


def packages(os_id: str, version: str) -> list[str]:
    """Distribution packages that give Docker Engine + Compose v2."""
    if os_id == "ubuntu":
        return ["docker.io", "docker-compose-v2"]
    major = int(version.split(".")[0]) if version.split(".")[0].isdigit() else 0
    if major >= 13:
        return ["docker.io", "docker-compose"]
    # Debian 12: Compose v2 is packaged in trixie and depends only on libc.
    return ["docker.io", "docker-compose/trixie"]


TRIXIE_SOURCE = (Path(__file__).parent / "trixie-source.sh").read_text()


def plan(facts: EngineFacts) -> list[Step]:
    title = "docker engine and compose"
    if facts.ready:
        return [package_step("engine", title, [], f"docker {facts.docker}, compose {facts.compose}")]
    family = facts.os_id if facts.os_id in SUPPORTED else next((x for x in facts.like if x in SUPPORTED), None)
    if family is None:
        what = "Docker Engine" if not facts.docker else "Compose v2"
        raise UnsupportedHost(f"{what} is missing and this OS ({facts.os_id} {facts.version}) is not Debian or "
                              f"Ubuntu: install Docker Engine and the Compose v2 plugin yourself, then re-run")
    pkgs = packages(family, facts.version)
    source = TRIXIE_SOURCE if any(p.endswith("/trixie") for p in pkgs) else ""
    return [package_step("engine", title, pkgs, script="systemctl enable --now docker\n", apt_source=source)]


class EngineRole(Role[BuildHost, None, EngineFacts]):
    name = "engine"

    def parse(self, sections: dict[str, str]) -> EngineFacts:
        return parse(sections)

    def plan(self, ctx: Context[BuildHost, None], facts: EngineFacts, files: dict[str, FileState]) -> list[Step]:
        return plan(facts)


ROLE = EngineRole()
