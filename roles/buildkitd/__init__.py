"""buildkitd: render docker-compose.yml, buildkitd.toml, entrypoint.sh and fence.sh from templates/ and the
inventory, upload them only when their checksum, mode or owner differs (temp file + rename), make sure the
pinned image is on the host (from an archive for air-gapped hosts), and start or update buildkitd through
Compose. The handler recreates the container only when the config or the image changed, after running builds
finish; the named cache volume always survives. buildkitd listens on a unix socket only: the gateway role
holds the BuildKit port, the certificates and the mutual-TLS proof."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_ops.engine import image_pins
from buildkit_ops.engine.contract import (
    Context,
    Handler,
    HandlerFailed,
    HandlerResult,
    Options,
    Outcome,
    PlanError,
    Role,
    Session,
    Step,
)
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command
from buildkit_ops.engine.steps import file_steps, pull_script
from buildkit_ops.inventory import BuildHost, Inventory, security_floor
from buildkit_ops.inventory import buildkit_versions as versions
from buildkit_ops.roles.buildkitd.drain import drain_script, refuse_if_busy, up_script
from buildkit_ops.roles.buildkitd.exports import CONTAINER, RESTART
from buildkit_ops.roles.buildkitd.facts import BuildkitdFacts, parse
from buildkit_ops.roles.buildkitd.files import config_hash, render, wanted_image_id

VERIFY = (Path(__file__).parent / "verify.sh").read_text()


class WrongVersion(PlanError):
    pass


def check_version(host: BuildHost, running: str | None) -> None:
    """The config is written in the terms of the inventory's buildkit.version: refuse to write it for a buildkitd
    of another minor version (BuildKit would ignore the keys it does not know, the GC policy among them)."""
    if running is None or not re.fullmatch(r"v0\.[0-9]+\.[0-9]+", running):
        return   # (not answering, or a development build: nothing to compare with)
    want = host.buildkit.version
    if versions.minor(running) != versions.minor(want):
        raise WrongVersion(f"{host.name} runs BuildKit {running} from {host.buildkit.image}, but the inventory says "
                           f"buildkit.version {want}: its buildkitd.toml would be written in another version's terms "
                           f"and BuildKit ignores the keys it does not know. Set buildkit.version to {running}, or "
                           f"change buildkit.image to a {want} image; nothing was changed")


class UnsafeDataDir(PlanError):
    pass


class BelowSecurityFloor(PlanError):
    pass


def check_floor(host: BuildHost, clients: int) -> None:
    """A BuildKit without the fixes a shared server needs serves one client only, unless the host says so."""
    version = host.buildkit.version
    if clients > 1 and security_floor.missing(version) and not host.allow_outdated_buildkit:
        raise BelowSecurityFloor(
            f"{host.name}: BuildKit {version} lacks fixes a server shared by {clients} clients needs "
            f"({security_floor.describe(version)}): run {security_floor.FLOOR} or newer (buildkit.image and "
            f"buildkit.version), or set allow_outdated_buildkit: true on the host to accept that risk; nothing "
            f"was changed")


def check_data_dir(host: BuildHost, parents: list[str]) -> None:
    """Root writes data_dir's files: a folder on its way that someone else owns or may write to would let them
    swap it for a link to anywhere. Refused before any change."""
    for line in parents:
        owner, mode, path = (line.split(" ", 2) + ["", ""])[:3]
        if owner != "root" or not mode.isdigit() or int(mode, 8) & 0o022:
            raise UnsafeDataDir(f"{host.name}: {path}, on the way to buildkit.data_dir {host.buildkit.data_dir}, is "
                                f"owned by {owner} with mode {mode}: someone other than root could replace what "
                                f"provision writes there. Make it root's and not group- or world-writable (chown "
                                f"root {path}; chmod go-w {path}), or choose another data_dir; nothing was changed")


def plan(host: BuildHost, files: list[File], facts: BuildkitdFacts, states: dict[str, FileState],
         image_id: str | None, clients: int = 1, pin: str | None = None) -> list[Step]:
    bk = host.buildkit
    check_floor(host, clients)
    check_data_dir(host, facts.data_dir_parents)
    steps = file_steps("buildkitd", files, states, [RESTART], name=lambda f: f.path.removeprefix(bk.data_dir + "/"))
    title = f"image {bk.image}"
    if image_id and facts.image_id != image_id:
        image = Step("buildkitd", title, True, f"load {Path(bk.image_archive or '').name} ({image_id[:19]})",
                     script="docker load -q\n", upload=bk.image_archive, notify=[RESTART])
    elif image_id:
        image = Step("buildkitd", title, False, image_id[:19])
    elif pin:
        have = image_pins.digest_for(facts.image_digests, bk.image)
        image = image_pins.pinned_step("buildkitd", title, bk.image, have, pin, [RESTART])
    elif not facts.image_id:
        image = Step("buildkitd", title, True, "pull", script=pull_script(bk.image),
                     notify=[RESTART])
    else:
        image = Step("buildkitd", title, False, facts.image_id[:19])
    steps.append(image)
    c = facts.container
    if c is not None and c.status == "running" and not image.changed:
        check_version(host, facts.version)
    if c is None:
        steps.append(Step("buildkitd", "service", True, "start", notify=[RESTART]))
    elif c.status != "running":
        steps.append(Step("buildkitd", "service", True, f"{c.status}: start", notify=[RESTART]))
    elif c.config_hash != config_hash(files, image_id or bk.image) and not any(s.notify for s in steps):
        # nothing to upload, yet the container started with other files (a run stopped before the restart,
        # or a manual `docker compose up`): restart it with the known state
        steps.append(Step("buildkitd", "service", True, "runs another config, certificate or image",
                          notify=[RESTART]))
    else:
        steps.append(Step("buildkitd", "service", False, f"running since {c.started[:19]}Z"))
    steps += fence_steps(host, facts, restarting=any(s.notify for s in steps))
    return steps


def fence_steps(host: BuildHost, facts: BuildkitdFacts, restarting: bool) -> list[Step]:
    """The build steps' fence stays up while buildkitd runs: a firewall reload or `nft flush ruleset` can take its
    rules away without a restart. Put back at once (fence.sh apply), no restart; a restart applies it anyway."""
    if host.buildkit.step_network != "sandboxed" or restarting:
        return []
    if not facts.fence_missing:
        return [Step("buildkitd", "build-step fence", False, "in place")]
    return [Step("buildkitd", "build-step fence", True,
                 f"{len(facts.fence_missing)} rule(s) missing: put back ({facts.fence_missing[0]})",
                 script=command("sh", f"{host.buildkit.data_dir}/fence.sh", "apply") + "\n")]


def handler_script(host: BuildHost, files: list[File], image_id: str | None, wait: int = 300,
                   force: bool = False) -> str:
    """Wait for running builds, compose up with the new config hash (Compose recreates the container when it
    differs; the cache volume stays), then wait until buildkitd answers."""
    h = config_hash(files, image_id or host.buildkit.image)
    compose_file = host.buildkit.data_dir + "/docker-compose.yml"
    return drain_script(wait, force, CONTAINER) + up_script(compose_file, h, CONTAINER) + VERIFY


@dataclass(frozen=True)
class BuildkitdInput:
    """What buildkitd is planned from, besides the host: the image id inside image_archive (if any), how long a
    restart waits for running builds and whether it may interrupt them, and how many clients it serves."""
    image_id: str | None
    wait: int = 300
    force: bool = False
    clients: int = 0                 # how many clients the server serves (the security floor)
    pin: str | None = None           # the image's digest in images.lock (a tag pulled from a registry)
    lock: Path | None = None         # images.lock, where a tag pulled unpinned gets its pin


def prepare(inv: Inventory, host: BuildHost, options: Options) -> BuildkitdInput:
    bk = host.buildkit
    lock = image_pins.lock_path(inv.file) if image_pins.pinnable(bk.image, bk.image_archive) else None
    return BuildkitdInput(wanted_image_id(host), options.wait, options.force, len(inv.clients),
                          image_pins.read(lock).get(bk.image) if lock else None, lock)


Ctx = Context[BuildHost, BuildkitdInput]


class Recreate(Handler[BuildHost, BuildkitdInput]):
    """Recreate the container once no build runs. Its protocol with the host: exit 75 and `@@busy N` when
    builds still run after the wait; `@@forced N` when they were interrupted (--force); then the fresh
    facts of verify.sh."""
    name = RESTART
    outcome = Outcome.RESTART

    def script(self, ctx: Ctx) -> str:
        i = ctx.input
        return handler_script(ctx.target, ctx.rendered or [], i.image_id, i.wait, i.force)

    def result(self, ctx: Ctx, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        refuse_if_busy(rc, out, ctx.input.wait)
        if rc != 0:
            raise HandlerFailed("buildkitd did not start: see `docker logs buildkitd` on the host",
                                (err or "").strip()[-400:])
        extra = [("running builds", f"{out['forced']} build(s) interrupted (--force)")] if out.get("forced") else []
        return HandlerResult("cache volume kept", extra, out)


class BuildkitdRole(Role[BuildHost, BuildkitdInput, BuildkitdFacts]):
    name = "buildkitd"
    handlers = {RESTART: Recreate()}
    verify_title = "answers on its socket"

    @property
    def facts_script(self) -> str:
        # verify.sh as a function that fails when buildkitd did not answer (such an answer is not cached)
        return (f"bkops_verify() {{\n_v=$({VERIFY.strip()}\n)\nprintf '%s\\n' \"$_v\"\n"
                f"printf '%s\\n' \"$_v\" | grep -q '^ID'\n}}\n" + super().facts_script)

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> BuildkitdInput:
        return prepare(inv, target, options)

    def fact_env(self, target: BuildHost) -> dict[str, str]:
        return {"BKOPS_IMAGE": target.buildkit.image, "BKOPS_PORT": str(target.buildkit.port),
                "BKOPS_DATA_DIR": target.buildkit.data_dir}

    def parse(self, sections: dict[str, str]) -> BuildkitdFacts:
        return parse(sections)

    def files(self, ctx: Ctx) -> list[File]:
        return render(ctx.target, self.templates)

    def plan(self, ctx: Ctx, facts: BuildkitdFacts, files: dict[str, FileState]) -> list[Step]:
        return plan(ctx.target, self.managed(ctx), facts, files, ctx.input.image_id, ctx.input.clients,
                    ctx.input.pin)

    def info(self, facts: BuildkitdFacts) -> dict[str, Any]:
        return {"platforms": facts.platforms, "buildkitd": facts.summary(), "step_network": facts.step_network}

    def verify(self, ctx: Ctx, facts: BuildkitdFacts, sess: Session, probe: Any, restarted: bool) -> str | None:
        if not facts.workers:
            raise HandlerFailed("buildkitd does not answer on its socket: see `docker logs buildkitd`")
        if ctx.input.lock is not None and ctx.input.pin is None:   # pulled by tag: pinned from now on
            image_pins.record_from_host(ctx.input.lock, ctx.target.buildkit.image, sess.run)
        if restarted:  # a new image: the version it runs is known only now
            try:
                check_version(ctx.target, facts.version)
            except WrongVersion as e:
                raise HandlerFailed(str(e).replace("nothing was changed", "then re-run provision"),
                                    f"runs {facts.version}") from None
        return facts.summary()


ROLE = BuildkitdRole()
