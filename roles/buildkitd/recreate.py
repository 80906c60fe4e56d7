"""buildkitd's handler: one daemon recreated with its new config or image, once none of its builds runs (the
drain), then proven to answer; and the input each instance is planned from."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.engine.contract import Context, Handler, HandlerFailed, HandlerResult, Outcome
from buildkit_ops.engine.render import File
from buildkit_ops.engine.shell import quote
from buildkit_ops.inventory import BuildHost
from buildkit_ops.inventory.daemons import SOCKET_DIR, Daemon
from buildkit_ops.roles.buildkitd.drain import drain_script, refuse_if_busy, up_script
from buildkit_ops.roles.buildkitd.exports import RESTART
from buildkit_ops.roles.buildkitd.files import config_hash

VERIFY = (Path(__file__).parent / "verify.sh").read_text()


@dataclass(frozen=True)
class BuildkitdInput:
    """What one daemon is planned from, besides the host: the image id inside image_archive (if any), how long a
    restart waits for its running builds and whether it may interrupt them, how many clients the server serves
    (the security floor), its image's pin; for the default instance, the tenants wanted on the host and those the
    operator confirmed for removal."""
    daemon: Daemon
    image_id: str | None
    wait: int = 300
    force: bool = False
    clients: int = 0
    pin: str | None = None           # the image's digest in images.lock (a tag pulled from a registry)
    lock: Path | None = None         # images.lock, where a tag pulled unpinned gets its pin
    wanted: frozenset[str] = field(default_factory=frozenset)   # the tenants' daemons wanted on the host
    remove: frozenset[str] = field(default_factory=frozenset)   # daemons the operator confirmed for removal

    @property
    def own_image(self) -> bool:
        """Whether this daemon's plan brings its image: the default instance's; a tenant runs the host's image
        (a tenant cannot set one), which the default instance brings and pins."""
        return self.daemon.instance is None



Ctx = Context[BuildHost, BuildkitdInput]


def handler_script(d: Daemon, files: list[File], image_id: str | None, wait: int = 300,
                   force: bool = False) -> str:
    """Wait for the daemon's running builds, compose up with the new config hash (Compose recreates the container
    when it differs; the cache volume stays), then wait until it answers, and read what it says of itself."""
    h = config_hash(files, image_id or d.buildkit.image)
    return (f"mkdir -p -m 0700 {quote(SOCKET_DIR)}\n" + drain_script(wait, force, d.container)
            + up_script(d.files_dir + "/docker-compose.yml", h, d.container)
            + f"BKOPS_CONTAINER={quote(d.container)}\n" + VERIFY)



class Recreate(Handler[BuildHost, BuildkitdInput]):
    """Recreate one daemon's container once none of its builds runs. Its protocol with the host: exit 75 and
    `@@busy N` when builds still run after the wait; `@@forced N` when they were interrupted (--force); then the
    fresh facts of verify.sh."""
    name = RESTART
    outcome = Outcome.RESTART

    def script(self, ctx: Ctx) -> str:
        i = ctx.input
        return handler_script(i.daemon, ctx.rendered or [], i.image_id, i.wait, i.force)

    def result(self, ctx: Ctx, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        refuse_if_busy(rc, out, ctx.input.wait)
        if rc != 0:
            raise HandlerFailed(f"{ctx.input.daemon.container} did not start: see `docker logs "
                                f"{ctx.input.daemon.container}` on the host", (err or "").strip()[-400:])
        extra = [("running builds", f"{out['forced']} build(s) interrupted (--force)")] if out.get("forced") else []
        return HandlerResult("cache volume kept", extra, out)


