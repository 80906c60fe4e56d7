"""prune: an optional scheduled `buildctl prune` on the host (a systemd timer) for each of its daemons (the
fleet's, and each tenant's with its own schedule), from the inventory's buildkit.prune_schedule; removed again
when the key goes. It complements BuildKit's own GC policy with a hard size or age cap."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine.contract import Context, Options, Role, Step, Templates
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command
from buildkit_ops.engine.steps import unit_steps
from buildkit_ops.inventory import BuildHost, Inventory, PruneSchedule
from buildkit_ops.roles.buildkitd.exports import SOCK, Daemon, fleet, tenants

UNIT = "buildkit-ops-prune"
PATHS = [f"/etc/systemd/system/{UNIT}.service", f"/etc/systemd/system/{UNIT}.timer"]


def unit_of(daemon: Daemon) -> str:
    return f"{UNIT}-{daemon.tenant}" if daemon.tenant else UNIT


@dataclass
class PruneFacts:
    units: list[str] = field(default_factory=list)   # installed unit files
    timer: list[str] = field(default_factory=list)   # `is-enabled`, `is-active` of the timer
    tenant_units: dict[str, list[str]] = field(default_factory=dict)   # a tenant's unit file -> is-enabled, is-active

    @property
    def timer_running(self) -> bool:
        return self.timer[:2] == ["enabled", "active"]


def parse(sections: dict[str, str]) -> PruneFacts:
    lines = (sections.get("prune_tenant_units") or "").splitlines()
    tenant_units = {line.split()[0]: line.split()[1:] for line in lines if line.strip()}
    return PruneFacts(units=(sections.get("prune_units") or "").split(),
                      timer=(sections.get("prune_timer") or "").split(), tenant_units=tenant_units)


def prune_command(sched: PruneSchedule, container: str = "buildkitd") -> list[str]:
    """The prune, as the argument list of the unit's ExecStart (escaped for systemd by the template)."""
    args = ["/usr/bin/docker", "exec", container, "buildctl", "--addr", SOCK, "prune"]
    if sched.keep_storage is not None:
        args += ["--keep-storage", f"{sched.keep_storage / 1e6:g}"]
    if sched.keep_duration is not None:
        args += ["--keep-duration", f"{sched.keep_duration}s"]
    for f in sched.filters or []:
        args += ["--filter", f]
    if sched.all:
        args.append("--all")
    return args


def render(host: BuildHost, templates: Templates | None = None, daemon: Daemon | None = None) -> list[File]:
    """The unit files of one daemon's scheduled prune (default: the fleet's); none without a schedule."""
    templates = templates or Templates(Path(__file__).parent / "templates")
    daemon = daemon or fleet(host)
    sched = daemon.buildkit.prune_schedule
    if not sched:
        return []
    unit = unit_of(daemon)
    service = templates.render(f"{UNIT}.service.j2", "systemd", command=prune_command(sched, daemon.container))
    timer = templates.render(f"{UNIT}.timer.j2", "systemd", calendar=sched.calendar)
    return [File(f"/etc/systemd/system/{unit}.service", service.encode()),
            File(f"/etc/systemd/system/{unit}.timer", timer.encode())]


def plan(host: BuildHost, files: list[File], facts: PruneFacts, states: dict[str, FileState]) -> list[Step]:
    """The fleet daemon's timer (files: its units, or none)."""
    if not files:
        if not facts.units:
            return []
        return [Step("prune", "scheduled prune", True, "removed (no buildkit.prune_schedule)",
                     script=f"systemctl disable --now {UNIT}.timer 2>/dev/null || true\n"
                            f"rm -f {' '.join(PATHS)}\nsystemctl daemon-reload\n")]
    return unit_steps("prune", files, states, f"{UNIT}.timer", facts.timer_running, "timer enabled", "active")


def tenant_plan(daemons: list[Daemon], files: list[File], facts: PruneFacts,
                states: dict[str, FileState]) -> list[Step]:
    """Each tenant daemon's timer; the timers of tenants with no schedule here any more are removed (a timer is
    no data: the daemon and its cache stay until remove-tenant)."""
    steps: list[Step] = []
    for d in daemons:
        unit = unit_of(d)
        own = [f for f in files if f.path.rsplit("/", 1)[1].rsplit(".", 1)[0] == unit]
        if own:
            running = facts.tenant_units.get(f"{unit}.timer", [])[:2] == ["enabled", "active"]
            steps += unit_steps("prune", own, states, f"{unit}.timer", running, f"{d.tenant}: timer enabled", "active")
    wanted = {f.path.rsplit("/", 1)[1] for f in files}
    for unit_file in sorted(set(facts.tenant_units) - wanted):
        if unit_file.endswith(".timer"):
            paths = [f"/etc/systemd/system/{unit_file.removesuffix('.timer')}.{kind}" for kind in ("timer", "service")]
            steps.append(Step("prune", unit_file, True, "removed (no such tenant schedule here)",
                              script=f"systemctl disable --now {command(unit_file)} 2>/dev/null || true\n"
                                     f"{command('rm', '-f', *paths)}\nsystemctl daemon-reload\n"))
    return steps


class PruneRole(Role[BuildHost, tuple[Daemon, ...], PruneFacts]):
    name = "prune"

    parse = staticmethod(parse)

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> tuple[Daemon, ...]:
        return tuple(tenants(inv, target))

    def files(self, ctx: Context[BuildHost, tuple[Daemon, ...]]) -> list[File]:
        return [f for d in (fleet(ctx.target), *ctx.input) for f in render(ctx.target, self.templates, d)]

    def plan(self, ctx: Context[BuildHost, tuple[Daemon, ...]], facts: PruneFacts,
             files: dict[str, FileState]) -> list[Step]:
        own = [f for f in self.managed(ctx) if f.path in PATHS]
        theirs = [f for f in self.managed(ctx) if f.path not in PATHS]
        return plan(ctx.target, own, facts, files) + tenant_plan(list(ctx.input), theirs, facts, files)


ROLE = PruneRole()
