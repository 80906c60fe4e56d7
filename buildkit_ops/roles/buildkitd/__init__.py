"""buildkitd: render docker-compose.yml and buildkitd.toml from templates/ and
the inventory, upload them and the TLS files only when their checksum, mode or
owner differs (temp file + rename), make sure the pinned image is on the host
(from an archive for air-gapped hosts), and start or update buildkitd through
Compose. The handler recreates the container only when the config, a
certificate or the image changed; the named cache volume always survives."""
from __future__ import annotations

import hashlib
import json
import tarfile
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

from ...inventory import BuildHost
from ...render import File, fix_mode_script, safe_dirname, unified_diff, write_file_script
from ...render import render as render_template
from ...shell import command, quote
from .. import Step

TEMPLATES = Path(__file__).parent / "templates"
CONTAINER = "buildkitd"
SOCK = "unix:///run/buildkit/buildkitd.sock"
# The bridge build steps run on (step_network: sandboxed); entrypoint.sh fences it off from the host.
BRIDGE_NAME = "buildkit0"
BRIDGE_SUBNET = "10.10.0.0/16"


class PortTaken(Exception):
    pass


@lru_cache(maxsize=8)
def archive_image_id(path: str, mtime: float, size: int) -> str:
    """The image ID inside a `docker save` tarball (its config digest)."""
    with tarfile.open(path) as t:
        manifest = json.load(t.extractfile("manifest.json"))
    cfg = manifest[0]["Config"]
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
    gc = {"enabled": bk.gc.enabled, "keep_storage": bk.gc.keep_storage,
          "policies": [{k: v for k, v in asdict(p).items() if v is not None} for p in bk.gc.policies]}
    toml = render_template(TEMPLATES / "buildkitd.toml.j2", "toml", host=host.name, version=bk.version, port=bk.port,
                           debug_address=bk.debug_address, max_parallelism=bk.max_parallelism, gc=gc,
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


def facts(host: BuildHost, files: list[File]) -> tuple[str, str]:
    paths = command(*(f.path for f in files))
    img = quote(host.buildkit.image)
    port = host.buildkit.port
    return f"""
echo @@files
for f in {paths}; do
  if [ -f "$f" ]; then echo "$(sha256sum < "$f" | cut -d' ' -f1) $(stat -c '%a %U:%G' "$f") $f"
  else echo "- - - $f"; fi
done
echo @@image; docker image inspect --format '{{{{.Id}}}}' {img} 2>/dev/null || true
echo @@container; docker inspect --format '{{{{.State.Status}}}} {{{{.State.StartedAt}}}} {{{{.Image}}}} \
  {{{{index .Config.Labels "org.buildkit-ops.config-hash"}}}}' {CONTAINER} 2>/dev/null || true
echo @@port; ss -ltnpH "sport = :{port}" 2>/dev/null | head -3 || true
""", VERIFY_FACTS


# What buildkitd says of itself over its local socket: one `docker exec`.
VERIFY_FACTS = (f"docker exec {CONTAINER} sh -c 'echo @@version; buildkitd --version; echo @@workers; "
                f"buildctl --addr {SOCK} debug workers; echo @@step_network; buildctl --addr {SOCK} debug workers -v "
                f"| grep -o \"worker.network:[[:space:]]*[a-z]*\" | head -1 | sed \"s/.*:[[:space:]]*//\"' "
                f"2>/dev/null || true\n")


def parse_files(text: str) -> dict[str, tuple[str, str, str]]:
    out = {}
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4:
            sha, mode, owner, path = parts
            out[path] = (sha, mode, owner)
    return out


def plan(host: BuildHost, files: list[File], facts: dict[str, str], image_id: str | None,
         current: dict[str, str] | None = None) -> list[Step]:
    bk = host.buildkit
    have = parse_files(facts.get("files", ""))
    container = (facts.get("container") or "").split()
    running = bool(container) and container[0] == "running"
    listener = facts.get("port", "")
    if listener and "buildkitd" not in listener:
        raise PortTaken(f"port {bk.port} is already taken on {host.name} by: {listener.split('users:')[-1]}; "
                        f"stop that service or set buildkit.port to a free port in the inventory")
    steps: list[Step] = []
    for f in files:
        sha, mode, owner = have.get(f.path, ("-", "-", "-"))
        name = f.path.removeprefix(bk.data_dir + "/")
        if sha == f.sha256 and mode == f"{f.mode:o}" and owner == "root:root":
            steps.append(Step("buildkitd", name, False))
            continue
        why = "new" if sha == "-" else ("content" if sha != f.sha256 else f"mode {mode} {owner}")
        script = write_file_script(f) if sha != f.sha256 else fix_mode_script(f)
        steps.append(Step("buildkitd", name, True, why, script=script,
                          diff=unified_diff(f, (current or {}).get(f.path)) if sha != f.sha256 else None,
                          notify=["recreate buildkitd"]))
    have_image = facts.get("image", "")
    if image_id:
        if have_image == image_id:
            steps.append(Step("buildkitd", f"image {bk.image}", False, image_id[:19]))
        else:
            steps.append(Step("buildkitd", f"image {bk.image}", True,
                              f"load {Path(bk.image_archive).name} ({image_id[:19]})", script="docker load -q\n",
                              upload=bk.image_archive, notify=["recreate buildkitd"]))
    elif not have_image:
        steps.append(Step("buildkitd", f"image {bk.image}", True, "pull",
                          script=command("docker", "pull", "-q", bk.image) + "\n", notify=["recreate buildkitd"]))
    else:
        steps.append(Step("buildkitd", f"image {bk.image}", False, have_image[:19]))
    want_hash = config_hash(files, image_id or bk.image)
    if not container:
        steps.append(Step("buildkitd", "service", True, "start", notify=["recreate buildkitd"]))
    elif not running:
        steps.append(Step("buildkitd", "service", True, f"{container[0]}: start", notify=["recreate buildkitd"]))
    elif (container[3] if len(container) > 3 else "") != want_hash and not any(s.notify for s in steps):
        # nothing to upload, yet the container started with other files (a run stopped before the restart,
        # or a manual `docker compose up`): restart it with the known state
        steps.append(Step("buildkitd", "service", True, "runs another config, certificate or image",
                          notify=["recreate buildkitd"]))
    else:
        steps.append(Step("buildkitd", "service", False, f"running since {container[1][:19]}Z"))
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
{VERIFY_FACTS}"""


def platforms(facts: dict[str, str]) -> str:
    """The first worker's platforms, as `buildctl debug workers` lists them."""
    for line in (facts.get("workers") or "").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2:
            return parts[1]
    return ""


def version(facts: dict[str, str]) -> str | None:
    """`buildkitd github.com/moby/buildkit v0.13.2 <commit>` -> v0.13.2"""
    words = (facts.get("version") or "").split()
    return words[2] if len(words) >= 3 else None


def summary(facts: dict[str, str]) -> str:
    workers = [l.split() for l in (facts.get("workers") or "").splitlines()[1:] if l.strip()]
    v = version(facts) or "?"
    ws = "; ".join(f"{w[0][:12]} {w[1] if len(w) > 1 else ''}" for w in workers) or "none"
    return f"buildkitd {v}, workers: {ws}"
