"""prune: an optional scheduled `buildctl prune` on the host (a systemd timer),
from the inventory's buildkit.prune_schedule; removed again when the key goes.
It complements BuildKit's own GC policy with a hard size or age cap."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine.contract import Context, Role, Step, Templates
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.steps import unit_steps
from buildkit_ops.inventory import BuildHost, PruneSchedule
from buildkit_ops.roles.buildkitd.exports import CONTAINER, SOCK

UNIT = "buildkit-ops-prune"
PATHS = [f"/etc/systemd/system/{UNIT}.service", f"/etc/systemd/system/{UNIT}.timer"]



@dataclass
class PruneFacts:
    units: list[str] = field(default_factory=list)   # installed unit files
    timer: list[str] = field(default_factory=list)   # `is-enabled`, `is-active` of the timer

    @property
    def timer_running(self) -> bool:
        return self.timer[:2] == ["enabled", "active"]


def parse(sections: dict[str, str]) -> PruneFacts:
    return PruneFacts(units=(sections.get("prune_units") or "").split(),
                      timer=(sections.get("prune_timer") or "").split())


def prune_command(sched: PruneSchedule) -> list[str]:
    """The prune, as the argument list of the unit's ExecStart (escaped for systemd by the template)."""
    args = ["/usr/bin/docker", "exec", CONTAINER, "buildctl", "--addr", SOCK, "prune"]
    if sched.keep_storage is not None:
        args += ["--keep-storage", f"{sched.keep_storage / 1e6:g}"]
    if sched.keep_duration is not None:
        args += ["--keep-duration", f"{sched.keep_duration}s"]
    for f in sched.filters or []:
        args += ["--filter", f]
    if sched.all:
        args.append("--all")
    return args


def render(host: BuildHost, templates: Templates | None = None) -> list[File]:
    templates = templates or Templates(Path(__file__).parent / "templates")
    sched = host.buildkit.prune_schedule
    if not sched:
        return []
    service = templates.render(f"{UNIT}.service.j2", "systemd", command=prune_command(sched))
    timer = templates.render(f"{UNIT}.timer.j2", "systemd", calendar=sched.calendar)
    return [File(PATHS[0], service.encode()), File(PATHS[1], timer.encode())]


def plan(host: BuildHost, files: list[File], facts: PruneFacts, states: dict[str, FileState]) -> list[Step]:
    if not files:
        if not facts.units:
            return []
        return [Step("prune", "scheduled prune", True, "removed (no buildkit.prune_schedule)",
                     script=f"systemctl disable --now {UNIT}.timer 2>/dev/null || true\n"
                            f"rm -f {' '.join(PATHS)}\nsystemctl daemon-reload\n")]
    return unit_steps("prune", files, states, f"{UNIT}.timer", facts.timer_running, "timer enabled", "active")


class PruneRole(Role[BuildHost, None, PruneFacts]):
    name = "prune"

    parse = staticmethod(parse)

    def files(self, ctx: Context[BuildHost, None]) -> list[File]:
        return render(ctx.target, self.templates)

    def plan(self, ctx: Context[BuildHost, None], facts: PruneFacts, files: dict[str, FileState]) -> list[Step]:
        return plan(ctx.target, self.managed(ctx), facts, files)


ROLE = PruneRole()
