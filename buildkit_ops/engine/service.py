"""The ladder every container service of ours climbs, one rung a step: its image on the target (loaded from an
archive, pulled by its pinned digest, or pulled by tag), then the service (absent or stopped: started; running
with another configuration than the one wanted, by the hash label it was created with: restarted), each rung
notifying the role's handler, which recreates it. buildkitd (each daemon), the gateway and the failover proxy
use it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from buildkit_ops.engine import image_pins
from buildkit_ops.engine.contract import Step
from buildkit_ops.engine.steps import pull_script


@dataclass(frozen=True)
class Image:
    """The image a service wants: a name, and where it comes from (an archive and the id inside it; else its pin
    in images.lock; else pulled by tag)."""
    name: str
    archive: str | None = None
    archive_id: str | None = None
    pin: str | None = None


def image_step(role: str, want: Image, have_id: str, have_digests: tuple[str, ...], notify: list[str],
               quiet: bool = False) -> Step:
    title = f"image {want.name}"
    if want.archive and want.archive_id and have_id != want.archive_id:
        return Step(role, title, True, f"load {Path(want.archive).name} ({want.archive_id[:19]})",
                    script="docker load -q >/dev/null\n", upload=want.archive, notify=list(notify))
    if want.archive_id:
        return Step(role, title, False, want.archive_id[:19])
    if want.pin:
        return image_pins.pinned_step(role, title, want.name, image_pins.digest_for(have_digests, want.name), want.pin,
                                      list(notify))
    if have_id:
        return Step(role, title, False, have_id[:19])
    if want.archive:
        return Step(role, title, True, f"load {Path(want.archive).name}", script="docker load -q >/dev/null\n",
                    upload=want.archive, notify=list(notify))
    return Step(role, title, True, "pull", script=pull_script(want.name, quiet), notify=list(notify))


def service_step(role: str, state: str, started: str, have_hash: str, want_hash: str, restarting: bool,
                 notify: list[str], title: str = "service", start: str = "start") -> Step:
    """state: the container's (running, exited, ...), or absent. restarting: an earlier step of the role already
    notified its handler (the hash will differ: it is recreated anyway)."""
    if state == "absent":
        return Step(role, title, True, start, notify=list(notify))
    if state != "running":
        return Step(role, title, True, f"{state}: start", notify=list(notify))
    if have_hash != want_hash and not restarting:
        # nothing to upload, yet it started with another configuration (a run stopped before the restart, or a
        # manual `docker compose up`): recreated with the known state
        return Step(role, title, True, "runs another config, certificate or image", notify=list(notify))
    return Step(role, title, False, f"running since {started[:19]}Z")
