"""buildkitd: one instance per daemon of the host (buildkit_ops/inventory/daemons.py): the fleet's own (the
default instance, with the names buildkit-ops always used) and each tenant's placed there. For each, render
docker-compose.yml, buildkitd.toml, entrypoint.sh and fence.sh from templates/ and the inventory, upload them only
when their checksum, mode or owner differs (temp file + rename), make sure the pinned image is on the host (from
an archive for air-gapped hosts), and start or update it through Compose. Its handler recreates that daemon alone,
when its config or image changed, after its own running builds finish; its cache volume always survives. Every
daemon listens on a unix socket only: the gateway role holds the BuildKit port, the certificates and the
mutual-TLS proof. The daemons of tenants no longer placed on the host are the default instance's to plan
(absent.py)."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from buildkit_ops.engine import image_pins, service
from buildkit_ops.engine.contract import HandlerFailed, Options, Role, Session, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command
from buildkit_ops.engine.steps import file_steps
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.daemons import Daemon, daemons, fleet
from buildkit_ops.roles.buildkitd import absent
from buildkit_ops.roles.buildkitd.checks import (
    BelowSecurityFloor,
    UnsafeDataDir,
    WrongVersion,
    check_data_dir,
    check_floor,
    check_version,
)
from buildkit_ops.roles.buildkitd.exports import RESTART
from buildkit_ops.roles.buildkitd.facts import BuildkitdFacts, parse
from buildkit_ops.roles.buildkitd.files import config_hash, render, wanted_image_id
from buildkit_ops.roles.buildkitd.recreate import VERIFY, BuildkitdInput, Ctx, Recreate

__all__ = ["BelowSecurityFloor", "UnsafeDataDir", "WrongVersion", "check_version", "parse", "plan", "ROLE"]

def prepare(inv: Inventory, host: BuildHost, options: Options, daemon: Daemon | None = None) -> BuildkitdInput:
    d = daemon or fleet(host)
    bk = d.buildkit
    lock = image_pins.lock_path(inv.file) if image_pins.pinnable(bk.image, bk.image_archive) else None
    pin = image_pins.read(lock).get(bk.image) if lock else None
    wanted = frozenset(t.instance for t in daemons(inv, host) if t.instance) if d.instance is None else frozenset()
    return BuildkitdInput(d, wanted_image_id(host), options.wait, options.force, len(inv.clients), pin,
                          lock if d.instance is None else None, wanted, options.remove)


def image_step(d: Daemon, facts: BuildkitdFacts, i: BuildkitdInput) -> Step | None:
    """The daemon's image on the host; none for a tenant's daemon that runs the fleet's image (the default
    instance's step brings it)."""
    if not i.own_image:
        return None
    want = service.Image(d.buildkit.image, d.buildkit.image_archive, i.image_id, i.pin)
    return service.image_step("buildkitd", want, facts.image_id, facts.image_digests, [RESTART])


def plan(host: BuildHost, files: list[File], facts: BuildkitdFacts, states: dict[str, FileState],
         i: BuildkitdInput) -> list[Step]:
    d = i.daemon
    check_floor(host, i.clients, d)
    check_data_dir(host, facts.data_dir_parents)
    steps = file_steps("buildkitd", files, states, [RESTART], name=lambda f: f.path.removeprefix(d.files_dir + "/"))
    image = image_step(d, facts, i)
    steps += [image] if image else []
    c = facts.container
    if c is not None and c.status == "running" and not (image and image.changed):
        check_version(host, facts.version, d)
    steps.append(service.service_step("buildkitd", c.status if c else "absent", c.started if c else "",
                                      c.config_hash if c else "", config_hash(files, i.image_id or d.buildkit.image),
                                      any(s.notify for s in steps), [RESTART],
                                      start=f"start ({d.container}, volume {d.volume})"))
    steps += fence_steps(d, facts, restarting=any(s.notify for s in steps))
    if d.instance is None:
        steps += absent.steps(host, facts.tenant_daemons, set(i.wanted), i.remove, i.wait, i.force)
    return steps


def fence_steps(d: Daemon, facts: BuildkitdFacts, restarting: bool) -> list[Step]:
    """The build steps' fence stays up while the daemon runs: a firewall reload or `nft flush ruleset` can take
    its rules away without a restart. Put back at once (fence.sh apply), no restart; a restart applies it anyway."""
    if d.buildkit.step_network != "sandboxed" or restarting:
        return []
    if not facts.fence_missing:
        return [Step("buildkitd", "build-step fence", False, "in place")]
    return [Step("buildkitd", "build-step fence", True,
                 f"{len(facts.fence_missing)} rule(s) missing: put back ({facts.fence_missing[0]})",
                 script=command("sh", f"{d.files_dir}/fence.sh", "apply") + "\n")]


class BuildkitdRole(Role[BuildHost, BuildkitdInput, BuildkitdFacts]):
    name = "buildkitd"
    handlers = {RESTART: Recreate()}
    verify_title = "answers on its socket"

    @property
    def facts_script(self) -> str:
        # verify.sh as a function that fails when buildkitd did not answer (such an answer is not cached)
        return (f"bkops_verify() {{\n_v=$({VERIFY.strip()}\n)\nprintf '%s\\n' \"$_v\"\n"
                f"printf '%s\\n' \"$_v\" | grep -q '^ID'\n}}\n" + super().facts_script)

    def instances(self, inv: Inventory, target: BuildHost) -> Sequence[Daemon]:
        return daemons(inv, target)

    def instance_name(self, item: Daemon) -> str | None:
        return item.instance

    def prepare_item(self, inv: Inventory, target: BuildHost, options: Options, item: Daemon) -> BuildkitdInput:
        return prepare(inv, target, options, item)

    def fact_env(self, target: BuildHost) -> dict[str, str]:
        return {"BKOPS_DATA_DIR": target.buildkit.data_dir}

    def item_env(self, item: Daemon) -> dict[str, str]:
        # the default instance also finds the daemons of tenants no longer placed on the host (absent.py)
        return {"BKOPS_IMAGE": item.buildkit.image, "BKOPS_CONTAINER": item.container,
                "BKOPS_FILES_DIR": item.files_dir, "BKOPS_CENSUS": "yes" if item.instance is None else ""}

    def parse(self, sections: dict[str, str]) -> BuildkitdFacts:
        return parse(sections)

    def files(self, ctx: Ctx) -> list[File]:
        return render(ctx.target, self.templates, ctx.input.daemon)

    def plan(self, ctx: Ctx, facts: BuildkitdFacts, files: dict[str, FileState]) -> list[Step]:
        return plan(ctx.target, self.managed(ctx), facts, files, ctx.input)

    def info(self, facts: BuildkitdFacts) -> dict[str, Any]:
        return {"platforms": facts.platforms, "buildkitd": facts.summary(), "step_network": facts.step_network}

    def verify(self, ctx: Ctx, facts: BuildkitdFacts, sess: Session, probe: Any, restarted: bool) -> str | None:
        d = ctx.input.daemon
        if not facts.workers:
            raise HandlerFailed(f"{d.container} does not answer on its socket: see `docker logs {d.container}`")
        if ctx.input.lock is not None and ctx.input.pin is None:   # pulled by tag: pinned from now on
            image_pins.record_from_host(ctx.input.lock, d.buildkit.image, sess.run)
        if restarted:  # a new image: the version it runs is known only now
            try:
                check_version(ctx.target, facts.version, d)
            except WrongVersion as e:
                raise HandlerFailed(str(e).replace("nothing was changed", "then re-run provision"),
                                    f"runs {facts.version}") from None
        return facts.summary()


ROLE = BuildkitdRole()
