"""buildkitd: render docker-compose.yml, buildkitd.toml and entrypoint.sh from templates/ and the
inventory, upload them and the TLS files only when their checksum, mode or owner differs (temp file +
rename), make sure the pinned image is on the host (from an archive for air-gapped hosts), and start or
update buildkitd through Compose. The handler recreates the container only when the config, a
certificate or the image changed, after running builds finish; the named cache volume always survives.
verify proves it answers over mutual TLS (probe.py)."""
from __future__ import annotations

import hashlib
import json
import re
import tarfile
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from buildkit_ops.engine.contract import (
    Context,
    Handler,
    HandlerFailed,
    HandlerResult,
    PlanError,
    Role,
    Step,
    file_steps,
)
from buildkit_ops.engine.render import File, FileState, safe_dirname
from buildkit_ops.engine.render import render as render_template
from buildkit_ops.engine.shell import command, quote
from buildkit_ops.inventory import BuildHost
from buildkit_ops.inventory import buildkit_versions as versions
from buildkit_ops.roles.buildkitd.probe import Probe

TEMPLATES = Path(__file__).parent / "templates"
CONTAINER = "buildkitd"
SOCK = "unix:///run/buildkit/buildkitd.sock"
# The bridge build steps run on (step_network: sandboxed); entrypoint.sh fences it off from the host.
BRIDGE_NAME = "buildkit0"
BRIDGE_SUBNET = "10.10.0.0/16"


RECREATE = "recreate buildkitd"
VERIFY = (Path(__file__).parent / "verify.sh").read_text()


class PortTaken(PlanError):
    pass


@dataclass
class Container:
    status: str            # running, exited, ...
    started: str
    image: str
    config_hash: str       # the label provision set when it (re)created the container


@dataclass
class BuildkitdFacts:
    image_id: str = ""                 # of the pinned image on the host, empty when absent
    container: Container | None = None
    listener: str = ""                 # `ss` line of whoever listens on the BuildKit port
    version: str | None = None         # v0.13.2, from the running buildkitd
    workers: str = ""                  # `buildctl debug workers`
    step_network: str | None = None    # cni (sandboxed) or host

    @property
    def platforms(self) -> str:
        """The first worker's platforms, as `buildctl debug workers` lists them."""
        for line in self.workers.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 2:
                return parts[1]
        return ""

    def summary(self) -> str:
        workers = [l.split() for l in self.workers.splitlines()[1:] if l.strip()]
        ws = "; ".join(f"{w[0][:12]} {w[1] if len(w) > 1 else ''}" for w in workers) or "none"
        return f"buildkitd {self.version or '?'}, workers: {ws}"


def parse(sections: dict[str, str]) -> BuildkitdFacts:
    c = (sections.get("container") or "").split()
    version = (sections.get("version") or "").split()
    return BuildkitdFacts(
        image_id=sections.get("image", ""),
        container=Container(c[0], c[1] if len(c) > 1 else "", c[2] if len(c) > 2 else "",
                            c[3] if len(c) > 3 else "") if c else None,
        listener=sections.get("port", ""), version=version[2] if len(version) >= 3 else None,
        workers=sections.get("workers", ""), step_network=sections.get("step_network") or None)


@lru_cache(maxsize=8)
def archive_image_id(path: str, mtime: float, size: int) -> str:
    """The image ID inside a `docker save` tarball (its config digest)."""
    with tarfile.open(path) as t:
        member = t.extractfile("manifest.json")
        if member is None:
            raise FileNotFoundError(f"{path} is not a `docker save` archive (no manifest.json)")
        manifest = json.load(member)
    cfg: str = manifest[0]["Config"]
    return "sha256:" + cfg.split("/")[-1].removesuffix(".json")


def wanted_image_id(host: BuildHost) -> str | None:
    arch = host.buildkit.image_archive
    if not arch:
        return None
    p = Path(arch)
    if not p.exists():
        raise FileNotFoundError(f"image_archive {arch} does not exist: build it (the lab: `invoke lab.up`) or fix "
                                f"buildkit.image_archive in the inventory")
    st = p.stat()
    return archive_image_id(str(p), st.st_mtime, st.st_size)


def registry_dir(name: str) -> str:
    """The directory of a registry's CA on the host (under data_dir/registries)."""
    return safe_dirname(name)


def render(host: BuildHost, tls: dict[str, bytes], image_id: str | None) -> list[File]:
    """Every file this role manages on the host, rendered (pure)."""
    bk = host.buildkit
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
    toml = render_template(TEMPLATES / "buildkitd.toml.j2", "toml", host=host.name, version=bk.version, port=bk.port,
                           debug_address=bk.debug_address, max_parallelism=bk.max_parallelism,
                           worker_gc=versions.worker_gc(bk.gc, bk.version),
                           gc_policies=[versions.policy(p, bk.version, i) for i, p in enumerate(bk.gc.policies)],
                           history_max_age=bk.history_max_age, history_max_entries=bk.history_max_entries,
                           registries=registries, step_network=bk.step_network, bridge_name=BRIDGE_NAME,
                           bridge_subnet=BRIDGE_SUBNET)
    entrypoint = render_template(TEMPLATES / "entrypoint.sh.j2", "shell", privileges=bk.privileges,
                                 step_network=bk.step_network, bridge_name=BRIDGE_NAME)
    compose = render_template(TEMPLATES / "docker-compose.yml.j2", "compose", host=host.name, image=bk.image,
                              privileges=bk.privileges, data_dir=d)
    return [File(f"{d}/docker-compose.yml", compose.encode()),
            File(f"{d}/buildkitd.toml", toml.encode()),
            File(f"{d}/entrypoint.sh", entrypoint.encode(), 0o755),
            File(f"{d}/tls/ca.crt", tls["ca.crt"]),
            File(f"{d}/tls/server.crt", tls["server.crt"]),
            File(f"{d}/tls/server.key", tls["server.key"], 0o600, secret=True)] + files


def config_hash(files: list[File], image: str) -> str:
    """What the running container must have started with: every managed file and the image."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.path.encode() + b"\0" + f.content + b"\0")
    h.update(image.encode())
    return h.hexdigest()[:16]


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


def plan(host: BuildHost, files: list[File], facts: BuildkitdFacts, states: dict[str, FileState],
         image_id: str | None) -> list[Step]:
    bk = host.buildkit
    if facts.listener and "buildkitd" not in facts.listener:
        raise PortTaken(f"port {bk.port} is already taken on {host.name} by: {facts.listener.split('users:')[-1]}; "
                        f"stop that service or set buildkit.port to a free port in the inventory")
    steps = file_steps("buildkitd", files, states, [RECREATE], name=lambda f: f.path.removeprefix(bk.data_dir + "/"))
    if image_id:
        if facts.image_id == image_id:
            steps.append(Step("buildkitd", f"image {bk.image}", False, image_id[:19]))
        else:
            steps.append(Step("buildkitd", f"image {bk.image}", True,
                              f"load {Path(bk.image_archive or '').name} ({image_id[:19]})", script="docker load -q\n",
                              upload=bk.image_archive, notify=[RECREATE]))
    elif not facts.image_id:
        steps.append(Step("buildkitd", f"image {bk.image}", True, "pull",
                          script=command("docker", "pull", "-q", bk.image) + "\n", notify=[RECREATE]))
    else:
        steps.append(Step("buildkitd", f"image {bk.image}", False, facts.image_id[:19]))
    c = facts.container
    image_changes = any(s.changed for s in steps if s.name.startswith("image "))
    if c is not None and c.status == "running" and not image_changes:
        check_version(host, facts.version)
    if c is None:
        steps.append(Step("buildkitd", "service", True, "start", notify=[RECREATE]))
    elif c.status != "running":
        steps.append(Step("buildkitd", "service", True, f"{c.status}: start", notify=[RECREATE]))
    elif c.config_hash != config_hash(files, image_id or bk.image) and not any(s.notify for s in steps):
        # nothing to upload, yet the container started with other files (a run stopped before the restart,
        # or a manual `docker compose up`): restart it with the known state
        steps.append(Step("buildkitd", "service", True, "runs another config, certificate or image",
                          notify=[RECREATE]))
    else:
        steps.append(Step("buildkitd", "service", False, f"running since {c.started[:19]}Z"))
    return steps


# Builds whose history record has no completion time are running.
RUNNING = "{{if .Record}}{{if not .Record.CompletedAt}}running{{end}}{{end}}"


def drain_script(wait: int, force: bool) -> str:
    """Wait until no build runs (buildkitd reads certificates only at start, so rotations restart it);
    after `wait` seconds give up (exit 75) or, forced, go on."""
    give_up = 'echo @@forced; echo "$n"; break' if force else 'echo @@busy; echo "$n"; exit 75'
    return f"""if [ "$(docker inspect -f '{{{{.State.Running}}}}' {CONTAINER} 2>/dev/null)" = true ]; then
  end=$(( $(date +%s) + {int(wait)} ))
  while :; do
    n=$(docker exec {CONTAINER} buildctl --addr {SOCK} debug histories --format '{RUNNING}' 2>/dev/null \
      | grep -c running)
    [ "$n" -eq 0 ] && break
    if [ "$(date +%s)" -ge "$end" ]; then {give_up}; fi
    sleep 1
  done
fi
"""


def handler_script(host: BuildHost, files: list[File], image_id: str | None, wait: int = 300,
                   force: bool = False) -> str:
    """Wait for running builds, compose up with the new config hash (Compose recreates the container when it
    differs; the cache volume stays), then wait until buildkitd answers."""
    compose_file = quote(host.buildkit.data_dir + "/docker-compose.yml")
    h = config_hash(files, image_id or host.buildkit.image)
    return drain_script(wait, force) + f"""T=$(mktemp)
if ! BKOPS_CONFIG_HASH={h} docker compose -f {compose_file} up -d --remove-orphans --quiet-pull >"$T" 2>&1
then tail -20 "$T" >&2; rm -f "$T"; exit 1; fi
rm -f "$T"
for i in $(seq 1 120); do
  docker exec {CONTAINER} buildctl --addr {SOCK} debug workers >/dev/null 2>&1 && break
  sleep 0.5
done
{VERIFY}"""


class Recreate(Handler):
    """Recreate the container once no build runs. Its protocol with the host: exit 75 and `@@busy N` when
    builds still run after the wait; `@@forced N` when they were interrupted (--force); then the fresh
    facts of verify.sh."""
    name = RECREATE

    def script(self, ctx: Context) -> str:
        return handler_script(ctx.host, ROLE.managed(ctx), ctx.image_id, ctx.wait, ctx.force)

    def result(self, ctx: Context, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        if rc == 75 and out.get("busy"):
            raise HandlerFailed(f"not restarted: {out['busy']} build(s) still running after {ctx.wait}s. The new "
                                f"files are in place; re-run when the builds are done, or with --force to restart "
                                f"now (running builds fail)", f"{out['busy']} build(s) still running after {ctx.wait}s")
        if rc != 0:
            raise HandlerFailed("buildkitd did not start: see `docker logs buildkitd` on the host",
                                (err or "").strip()[-400:])
        extra = [("running builds", f"{out['forced']} build(s) interrupted (--force)")] if out.get("forced") else []
        return HandlerResult("cache volume kept", extra, out)


class BuildkitdRole(Role):
    name = "buildkitd"
    handlers = {RECREATE: Recreate()}
    verify_title = "answers over mutual TLS"

    @property
    def facts_script(self) -> str:
        # verify.sh as a function that fails when buildkitd did not answer (such an answer is not cached)
        return (f"bkops_verify() {{\n_v=$({VERIFY.strip()}\n)\nprintf '%s\\n' \"$_v\"\n"
                f"printf '%s\\n' \"$_v\" | grep -q '^ID'\n}}\n" + super().facts_script)

    def fact_env(self, ctx: Context) -> dict[str, str]:
        return {"BKOPS_IMAGE": ctx.host.buildkit.image, "BKOPS_PORT": str(ctx.host.buildkit.port)}

    def parse(self, sections: dict[str, str]) -> BuildkitdFacts:
        return parse(sections)

    def files(self, ctx: Context) -> list[File]:
        return render(ctx.host, ctx.tls, ctx.image_id)

    def plan(self, ctx: Context, facts: Any, files: dict[str, FileState]) -> list[Step]:
        return plan(ctx.host, self.managed(ctx), facts, files, ctx.image_id)

    def info(self, facts: Any) -> dict[str, Any]:
        return {"platforms": facts.platforms, "buildkitd": facts.summary(), "step_network": facts.step_network}

    def start_probe(self, ctx: Context, sess: Any) -> Probe | None:
        return Probe(sess, ctx.tls["ca.crt"], ctx.operator) if ctx.operator else None

    def verify(self, ctx: Context, facts: Any, sess: Any, probe: Any, restarted: bool) -> str | None:
        if not facts.workers:
            raise HandlerFailed("buildkitd does not answer on its socket: see `docker logs buildkitd`")
        if restarted:  # a new image: the version it runs is known only now
            try:
                check_version(ctx.host, facts.version)
            except WrongVersion as e:
                raise HandlerFailed(str(e).replace("nothing was changed", "then re-run provision"),
                                    f"runs {facts.version}") from None
        if restarted or probe is None:  # the first probe talked to the old container
            probe = self.start_probe(ctx, sess)
        return f"{probe.result()}; {facts.summary()}" if probe else facts.summary()


ROLE = BuildkitdRole()
