"""tenants: a buildkitd of its own for each tenant placed on the host (docs/tenants.md): its files (Compose
project, buildkitd.toml in the tenant's terms, entrypoint and fence) under data_dir/tenants/NAME, its container,
cache volume, unix socket and step bridge, all named after the tenant (roles/buildkitd/daemons.py). The
fleet's own buildkitd stays the buildkitd role's; an inventory without tenants gives this role nothing to do.

A changed tenant is restarted alone, after its own builds finish; the others keep running. A tenant no longer
placed on the host keeps its daemon and cache until `bkops remove-tenant NAME --confirm` removes them: nothing
is lost by an edit of the inventory."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from buildkit_ops.engine.contract import (
    Context,
    Handler,
    HandlerFailed,
    HandlerResult,
    Options,
    Outcome,
    Role,
    Session,
    Step,
    Templates,
)
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command, quote
from buildkit_ops.engine.steps import file_steps
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.roles.buildkitd.exports import (
    SOCKET_DIR,
    TEMPLATES,
    Daemon,
    config_hash,
    drain_script,
    refuse_if_busy,
    render_files,
    tenants,
    up_script,
    wanted_image_id,
)

RESTART = "recreate tenant daemons"


@dataclass
class TenantDaemon:
    name: str                            # the tenant's
    status: str                          # running, exited, ...
    started: str
    config_hash: str


@dataclass
class TenantsFacts:
    daemons: dict[str, TenantDaemon] = field(default_factory=dict)   # tenant name -> its container
    fence_missing: dict[str, list[str]] = field(default_factory=dict)   # tenant -> its fence's missing rules


def parse(sections: dict[str, str]) -> TenantsFacts:
    facts = TenantsFacts()
    for line in (sections.get("tenant_daemons") or "").splitlines():
        parts = line.split()
        if parts and parts[0].startswith("buildkitd-"):
            name = parts[0].removeprefix("buildkitd-")
            status, started, config_hash_ = (parts[1:] + ["", "", ""])[:3]
            facts.daemons[name] = TenantDaemon(name, status, started, config_hash_)
    for line in (sections.get("tenant_fences") or "").splitlines():
        name, _, rule = line.partition(" ")
        if rule.strip():
            facts.fence_missing.setdefault(name, []).append(rule.removeprefix("missing: "))
    return facts


@dataclass(frozen=True)
class TenantsInput:
    """The tenants' daemons wanted on the host, the image id inside image_archive (the fleet's image: the
    buildkitd role loads it), and how long a restart waits for a tenant's running builds."""
    daemons: tuple[Daemon, ...]
    image_id: str | None
    wait: int = 300
    force: bool = False
    emulate: tuple[str, ...] = ()        # the host's emulated platforms


Ctx = Context[BuildHost, TenantsInput]


def own_files(d: Daemon, files: list[File]) -> list[File]:
    """The files of one tenant's daemon, among every tenant's on the host."""
    return [f for f in files if f.path.startswith(d.files_dir + "/")]


def wanted_hash(d: Daemon, files: list[File], image_id: str | None, emulate: tuple[str, ...] = ()) -> str:
    """What the tenant's container must have started with: its files, the image, and the host's emulated
    platforms (buildkitd finds the emulators as it starts: a new one restarts the tenants too, as the fleet's)."""
    return config_hash(own_files(d, files), (image_id or d.buildkit.image) + "".join(f" {p}" for p in emulate))


def plan(host: BuildHost, daemons: tuple[Daemon, ...], files: list[File], facts: TenantsFacts,
         states: dict[str, FileState], image_id: str | None, emulate: tuple[str, ...] = ()) -> list[Step]:
    steps: list[Step] = []
    data_dir = host.buildkit.data_dir
    for d in daemons:
        steps += file_steps("tenants", own_files(d, files), states, [RESTART],
                            name=lambda f: f.path.removeprefix(data_dir + "/"))
        c = facts.daemons.get(d.tenant or "")
        title = f"{d.tenant}: buildkitd"
        if c is None:
            steps.append(Step("tenants", title, True, f"start ({d.container}, volume {d.volume})", notify=[RESTART]))
        elif c.status != "running":
            steps.append(Step("tenants", title, True, f"{c.status}: start", notify=[RESTART]))
        elif c.config_hash != wanted_hash(d, files, image_id, emulate):
            steps.append(Step("tenants", title, True, "runs another config or image: restart after its builds",
                              notify=[RESTART]))
        else:
            steps.append(Step("tenants", title, False, f"running since {c.started[:19]}Z"))
            missing = facts.fence_missing.get(d.tenant or "")
            if d.buildkit.step_network == "sandboxed" and missing:
                steps.append(Step("tenants", f"{d.tenant}: build-step fence", True,
                                  f"{len(missing)} rule(s) missing: put back ({missing[0]})",
                                  script=command("sh", f"{d.files_dir}/fence.sh", "apply") + "\n"))
    wanted = {d.tenant for d in daemons}
    for name in sorted(set(facts.daemons) - wanted):
        # (never removed by a provision: an inventory edit does not take a team's cache away)
        steps.append(Step("tenants", f"{name}: buildkitd", False,
                          f"not a tenant of this host in the inventory: kept with its cache; `bkops remove-tenant "
                          f"{name} --confirm` removes it"))
    return steps


def restart_script(daemons: tuple[Daemon, ...], files: list[File], image_id: str | None, wait: int,
                   force: bool, emulate: tuple[str, ...] = ()) -> str:
    """For each tenant whose container runs another config (or none): wait for its builds, compose up with the
    new config hash (its cache volume stays), then wait until it answers. The others are left alone."""
    out = f"mkdir -p -m 0700 {quote(SOCKET_DIR)}\n"
    for d in daemons:
        h = wanted_hash(d, files, image_id, emulate)
        c = quote(d.container)
        label = "{{index .Config.Labels \"org.buildkit-ops.config-hash\"}} {{.State.Running}}"
        out += f"""if [ "$(docker inspect -f '{label}' {c} 2>/dev/null)" != "{h} true" ]; then
(
{drain_script(wait, force, d.container).strip()}
) || exit $?
{up_script(d.files_dir + "/docker-compose.yml", h, d.container).strip()}
[ -n "$ok" ] || {{ echo {quote(d.container)} does not answer >&2; docker logs --tail 20 {c} >&2; exit 1; }}
echo @@restarted_{d.slot}; echo {quote(d.label)}
fi
"""
    return out


class Restart(Handler[BuildHost, TenantsInput]):
    """Recreate the tenants' daemons whose config or image changed, each once its own builds are done."""
    name = RESTART
    outcome = Outcome.RESTART

    def script(self, ctx: Ctx) -> str:
        i = ctx.input
        return restart_script(i.daemons, ctx.rendered or [], i.image_id, i.wait, i.force, i.emulate)

    def result(self, ctx: Ctx, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        refuse_if_busy(rc, out, ctx.input.wait, "a tenant's buildkitd: ")
        if rc != 0:
            raise HandlerFailed("a tenant's buildkitd did not start: see `docker logs buildkitd-NAME` on the host",
                                (err or "").strip()[-400:])
        names = [v.strip() for k, v in out.items() if k.startswith("restarted_")]
        return HandlerResult(f"restarted {', '.join(sorted(names)) or 'none'}; cache volumes kept", [], out)


class TenantsRole(Role[BuildHost, TenantsInput, TenantsFacts]):
    name = "tenants"
    handlers = {RESTART: Restart()}
    verify_title = "tenants' daemons answer"

    parse = staticmethod(parse)

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> TenantsInput:
        return TenantsInput(tuple(tenants(inv, target)), wanted_image_id(target), options.wait, options.force,
                            tuple(target.emulate))

    def fact_env(self, target: BuildHost) -> dict[str, str]:
        return {"BKOPS_DATA_DIR": target.buildkit.data_dir}

    def files(self, ctx: Ctx) -> list[File]:
        # buildkitd's templates (an operator's override beside the inventory first): one daemon, one set of files
        templates = Templates(*self.templates.dirs, TEMPLATES)
        return [f for d in ctx.input.daemons for f in render_files(ctx.target, templates, d)]

    def plan(self, ctx: Ctx, facts: TenantsFacts, files: dict[str, FileState]) -> list[Step]:
        i = ctx.input
        return plan(ctx.target, i.daemons, self.managed(ctx), facts, files, i.image_id, i.emulate)

    def info(self, facts: TenantsFacts) -> dict[str, Any]:
        return {"tenants": {n: d.status for n, d in sorted(facts.daemons.items())}} if facts.daemons else {}

    def verify(self, ctx: Ctx, facts: TenantsFacts, sess: Session, probe: Any, restarted: bool) -> str | None:
        """From the facts (no command more): the restart handler waited for each daemon it started to answer."""
        if not ctx.input.daemons:
            return None
        down = [d.label for d in ctx.input.daemons if not restarted and (
            facts.daemons.get(d.label) is None or facts.daemons[d.label].status != "running")]
        if down:
            raise HandlerFailed(f"tenant daemon(s) {', '.join(down)} do not run: see `docker logs buildkitd-NAME` "
                                f"on the host")
        return ", ".join(d.label for d in ctx.input.daemons) + " running"


ROLE = TenantsRole()
