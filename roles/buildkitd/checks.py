"""What stops a daemon's plan before any change: a config for another BuildKit version than the one running, a
BuildKit below the security floor serving more than one client, a data_dir someone else could swap."""
from __future__ import annotations

import re

from buildkit_ops.engine.contract import PlanError
from buildkit_ops.inventory import BuildHost, security_floor
from buildkit_ops.inventory import buildkit_versions as versions
from buildkit_ops.inventory.daemons import Daemon, fleet


class WrongVersion(PlanError):
    pass


class UnsafeDataDir(PlanError):
    pass


class BelowSecurityFloor(PlanError):
    pass


def check_version(host: BuildHost, running: str | None, daemon: Daemon | None = None) -> None:
    """The config is written in the terms of the inventory's buildkit.version: refuse to write it for a buildkitd
    of another minor version (BuildKit would ignore the keys it does not know, the GC policy among them)."""
    if running is None or not re.fullmatch(r"v0\.[0-9]+\.[0-9]+", running):
        return   # (not answering, or a development build: nothing to compare with)
    bk = (daemon or fleet(host)).buildkit
    if versions.minor(running) != versions.minor(bk.version):
        raise WrongVersion(f"{host.name} runs BuildKit {running} from {bk.image}, but the inventory says "
                           f"buildkit.version {bk.version}: its buildkitd.toml would be written in another version's "
                           f"terms and BuildKit ignores the keys it does not know. Set buildkit.version to {running}, "
                           f"or change buildkit.image to a {bk.version} image; nothing was changed")


def check_floor(host: BuildHost, clients: int, daemon: Daemon | None = None) -> None:
    """A BuildKit without the fixes a shared server needs serves one client only, unless the host says so."""
    version = (daemon or fleet(host)).buildkit.version
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
