"""buildkitd's files, rendered from templates/ and the inventory: docker-compose.yml, buildkitd.toml (in the
terms of the inventory's BuildKit version), entrypoint.sh and fence.sh (the build steps' fence) and the
registries' CAs; and the image the container runs. buildkitd listens on a unix socket only, in a host folder
shared with the gateway (which owns the TLS files)."""
from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

from buildkit_ops.engine import image_archive
from buildkit_ops.engine.contract import Templates
from buildkit_ops.engine.render import File, safe_dirname
from buildkit_ops.inventory import BuildHost
from buildkit_ops.inventory import buildkit_versions as versions
from buildkit_ops.inventory.daemons import STEPS, Daemon, fleet

TEMPLATES = Path(__file__).parent / "templates"


def wanted_image_id(host: BuildHost) -> str | None:
    return image_archive.image_id(host.buildkit.image_archive, "image_archive")


def registry_dir(name: str) -> str:
    """The directory of a registry's CA on the host (under data_dir/registries)."""
    return safe_dirname(name)


def render(host: BuildHost, templates: Templates | None = None, daemon: Daemon | None = None) -> list[File]:
    """Every file of one daemon of the host (default: the fleet's), rendered (pure). The registries' CAs are the
    host's, shared by its daemons: the default instance writes them."""
    daemon = daemon or fleet(host)
    bk = daemon.buildkit
    d = bk.data_dir
    # what the templates get: plain values, unset ones left out (they write only the keys that are set)
    registries = {}
    files: list[File] = []
    for name, conf in sorted(bk.registries.items()):
        registries[name] = {k: v for k, v in asdict(conf).items() if v is not None and k != "ca"}
        if conf.ca is not None:
            registries[name].update(ca=True, dir=registry_dir(name))
            ca = Path(conf.ca)
            if not ca.is_file():
                raise FileNotFoundError(f"{host.name}: buildkit.registries.{name}.ca: {ca} does not exist; put the "
                                        f"registry's CA certificate there or remove the key from the inventory")
            files.append(File(f"{d}/registries/{registry_dir(name)}/ca.crt", ca.read_bytes()))
    templates = templates or Templates(TEMPLATES)
    toml = templates.render("buildkitd.toml.j2", "toml", host=host.name, version=bk.version,
                           log_level=versions.minor(bk.version) >= versions.LOG_LEVEL,
                           debug_address=bk.debug_address, max_parallelism=bk.max_parallelism,
                           worker_gc=versions.worker_gc(bk.gc, bk.version),
                           gc_policies=[versions.policy(p, bk.version, i) for i, p in enumerate(bk.gc.policies)],
                           history_max_age=bk.history_max_age, history_max_entries=bk.history_max_entries,
                           registries=registries, step_network=bk.step_network, bridge_name=daemon.bridge,
                           bridge_subnet=daemon.subnet)
    entrypoint = templates.render("entrypoint.sh.j2", "shell", privileges=bk.privileges,
                                 step_network=bk.step_network, bridge_name=daemon.bridge)
    # a tenant's fence also keeps its steps from every other daemon's, and every other daemon's from its own
    fence = templates.render("fence.sh.j2", "shell", bridge_name=daemon.bridge, bridge_subnet=daemon.subnet,
                             tenant=daemon.tenant, steps=STEPS)
    own = daemon.files_dir
    compose = templates.render("docker-compose.yml.j2", "compose", host=host.name, image=bk.image,
                              privileges=bk.privileges, data_dir=d, socket_dir=daemon.socket_dir,
                              project=daemon.project, container=daemon.container, volume=daemon.volume,
                              files_dir=own)
    return [File(f"{own}/docker-compose.yml", compose.encode()),
            File(f"{own}/buildkitd.toml", toml.encode()),
            File(f"{own}/entrypoint.sh", entrypoint.encode(), 0o755),
            File(f"{own}/fence.sh", fence.encode(), 0o755)] + (files if daemon.instance is None else [])


def config_hash(files: list[File], image: str) -> str:
    """What the running container must have started with: every managed file and the image."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.path.encode() + b"\0" + f.content + b"\0")
    h.update(image.encode())
    return h.hexdigest()[:16]
