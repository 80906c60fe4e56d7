"""prune: an optional scheduled `buildctl prune` (a systemd timer), once per daemon of the host (the fleet's, the
default instance; each tenant's with its own schedule), from buildkit.prune_schedule; removed again when the key
goes. It complements BuildKit's own GC policy with a hard size or age cap. The timers of tenants no longer placed
on the host are removed by the default instance (a timer is no data: the daemon and its cache are buildkitd's)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine.contract import Context, Options, Role, Step, Templates
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command
from buildkit_ops.engine.steps import unit_steps
from buildkit_ops.inventory import BuildHost, Inventory, PruneSchedule
from buildkit_ops.inventory.daemons import SOCK, Daemon, daemons, fleet

UNIT = "buildkit-ops-prune"


def unit_of(daemon: Daemon) -> str:
    return UNIT if daemon.instance is None else f"{UNIT}-{daemon.instance}"


def unit_paths(unit: str) -> list[str]:
    return [f"/etc/systemd/system/{unit}.service", f"/etc/systemd/system/{unit}.timer"]


@dataclass
class PruneFacts:
    units: list[str] = field(default_factory=list)   # its installed unit files
    timer: list[str] = field(default_factory=list)   # `is-enabled`, `is-active` of its timer
    tenant_timers: list[str] = field(default_factory=list)   # (default instance) every tenant's timer on the host

    @property
    def timer_running(self) -> bool:
        return self.timer[:2] == ["enabled", "active"]


def parse(sections: dict[str, str]) -> PruneFacts:
    return PruneFacts(units=(sections.get("prune_units") or "").split(),
                      timer=(sections.get("prune_timer") or "").split(),
                      tenant_timers=(sections.get("prune_tenant_timers") or "").split())


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
    service = templates.render(f"{UNIT}.service.j2", "systemd", command=prune_command(sched, daemon.container))
    timer = templates.render(f"{UNIT}.timer.j2", "systemd", calendar=sched.calendar)
    service_path, timer_path = unit_paths(unit_of(daemon))
    return [File(service_path, service.encode()), File(timer_path, timer.encode())]


def removal(unit: str, why: str, instance: str | None = None) -> Step:
    return Step("prune", f"{unit}.timer", True, f"removed ({why})", instance=instance,
                script=f"systemctl disable --now {command(unit + '.timer')} 2>/dev/null || true\n"
                       f"{command('rm', '-f', *unit_paths(unit))}\nsystemctl daemon-reload\n")


def plan(host: BuildHost, files: list[File], facts: PruneFacts, states: dict[str, FileState],
         daemon: Daemon | None = None, wanted: frozenset[str] = frozenset()) -> list[Step]:
    """One daemon's timer (files: its units, or none); for the default instance, also the removal of the
    timers of tenants not wanted on the host (`wanted`: the tenants' daemons placed there)."""
    d = daemon or fleet(host)
    unit = unit_of(d)
    if files:
        steps = unit_steps("prune", files, states, f"{unit}.timer", facts.timer_running, "timer enabled", "active")
    else:
        steps = [removal(unit, "no buildkit.prune_schedule")] if facts.units else []
    if d.instance is None:
        keep = {f"{UNIT}-{name}.timer" for name in wanted}
        for timer in sorted(set(facts.tenant_timers) - keep):
            left = timer.removesuffix(".timer")
            steps.append(removal(left, "no such tenant here", left.removeprefix(f"{UNIT}-")))
    return steps


@dataclass(frozen=True)
class PruneInput:
    daemon: Daemon
    wanted: frozenset[str] = frozenset()   # (default instance) the tenants' daemons placed on the host


class PruneRole(Role[BuildHost, PruneInput, PruneFacts]):
    name = "prune"

    parse = staticmethod(parse)

    def instances(self, inv: Inventory, target: BuildHost) -> Sequence[Daemon]:
        return daemons(inv, target)

    def instance_name(self, item: Daemon) -> str | None:
        return item.instance

    def item_env(self, item: Daemon) -> dict[str, str]:
        return {"BKOPS_UNIT": unit_of(item), "BKOPS_CENSUS": "yes" if item.instance is None else ""}

    def prepare_item(self, inv: Inventory, target: BuildHost, options: Options, item: Daemon) -> PruneInput:
        wanted = frozenset(d.instance for d in daemons(inv, target) if d.instance) if item.instance is None else None
        return PruneInput(item, wanted or frozenset())

    def files(self, ctx: Context[BuildHost, PruneInput]) -> list[File]:
        return render(ctx.target, self.templates, ctx.input.daemon)

    def plan(self, ctx: Context[BuildHost, PruneInput], facts: PruneFacts, files: dict[str, FileState]) -> list[Step]:
        return plan(ctx.target, self.managed(ctx), facts, files, ctx.input.daemon, ctx.input.wanted)


ROLE = PruneRole()
