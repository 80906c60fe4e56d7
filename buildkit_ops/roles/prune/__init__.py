"""prune: an optional scheduled `buildctl prune` on the host (a systemd timer),
from the inventory's buildkit.prune_schedule; removed again when the key goes.
It complements BuildKit's own GC policy with a hard size or age cap."""
from __future__ import annotations

from pathlib import Path

from ...inventory import BuildHost, PruneSchedule
from ...render import File, unified_diff, write_file_script
from ...render import render as render_template
from .. import Step
from ..buildkitd import CONTAINER, SOCK

TEMPLATES = Path(__file__).parent / "templates"
UNIT = "buildkit-ops-prune"
PATHS = [f"/etc/systemd/system/{UNIT}.service", f"/etc/systemd/system/{UNIT}.timer"]

FACTS = ("echo @@prune; for f in " + " ".join(PATHS) + "; do "
         "if [ -f \"$f\" ]; then echo \"$(sha256sum < \"$f\" | cut -c1-64) $f\"; fi; done; "
         f"echo @@prune_timer; systemctl is-enabled {UNIT}.timer 2>/dev/null; "
         f"systemctl is-active {UNIT}.timer 2>/dev/null || true\n")


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


def render(host: BuildHost) -> list[File]:
    sched = host.buildkit.prune_schedule
    if not sched:
        return []
    service = render_template(TEMPLATES / f"{UNIT}.service.j2", "systemd", command=prune_command(sched))
    timer = render_template(TEMPLATES / f"{UNIT}.timer.j2", "systemd", calendar=sched.calendar)
    return [File(PATHS[0], service.encode()), File(PATHS[1], timer.encode())]


def plan(host: BuildHost, facts: dict[str, str], current: dict[str, str] | None = None) -> list[Step]:
    files = render(host)
    have = {}
    for line in (facts.get("prune") or "").splitlines():
        sha, _, path = line.partition(" ")
        have[path] = sha
    state = (facts.get("prune_timer") or "").split()
    if not files:
        if not have:
            return []
        return [Step("prune", "scheduled prune", True, "removed (no buildkit.prune_schedule)",
                     script=f"systemctl disable --now {UNIT}.timer 2>/dev/null || true\n"
                            f"rm -f {' '.join(PATHS)}\nsystemctl daemon-reload\n")]
    steps = []
    for f in files:
        name = f.path.rsplit("/", 1)[1]
        if have.get(f.path) == f.sha256:
            steps.append(Step("prune", name, False))
        else:
            steps.append(Step("prune", name, True, "new" if f.path not in have else "content",
                              script=write_file_script(f), diff=unified_diff(f, (current or {}).get(f.path))))
    enabled = state[:2] == ["enabled", "active"]
    if enabled and not any(s.changed for s in steps):
        steps.append(Step("prune", "timer enabled", False, "active"))
    else:
        steps.append(Step("prune", "timer enabled", True, "enable and start",
                          script=f"systemctl daemon-reload\nsystemctl enable --now {UNIT}.timer\n"
                                 f"systemctl restart {UNIT}.timer\n"))
    return steps
