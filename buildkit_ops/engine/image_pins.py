"""Images pinned on first pull (`images.lock` beside the inventory).

An image named by tag alone (`moby/buildkit:v0.35.1`, `haproxy:3.2`) and pulled by the hosts could be other bytes
on each host and each run: a tag moves. A digest nobody could confirm is not written into the inventory as if it
were confirmed; instead the first host that pulls the tag records the digest it got, and from then on every
host and every run gets exactly that digest (pulled by digest, then tagged, so the compose files keep naming the
tag and nothing restarts for the pin). `status` shows the digest each host runs. An image given with
`@sha256:...`, or shipped as an archive, is pinned already and never recorded.

Check a pin as the README says: `docker buildx imagetools inspect REF`, its `Digest:` line."""
from __future__ import annotations

import fcntl
import re
from collections.abc import Callable
from pathlib import Path

import yaml

from buildkit_ops.engine.contract import Step
from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.engine.shell import command, quote
from buildkit_ops.errors import BkopsError

FILE = "images.lock"
HEADER = ("# Image digests pinned at their first pull by buildkit-ops (`provision`): every host and run gets\n"
          "# exactly these. Check one with `docker buildx imagetools inspect REF` (its Digest: line); delete a\n"
          "# line to pin that tag anew at the next pull.\n")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# what facts.sh prints for an image: its id, then its repo digests (repo@sha256:..., space-separated)
# (a range, not `join`: Docker 20.10's template takes RepoDigests as []interface{}, which join refuses)
FACT = "docker image inspect --format '{{.Id}} {{range .RepoDigests}}{{.}} {{end}}' %s 2>/dev/null || true"


def record_from_host(lock: Path, ref: str, run: Callable[[str], tuple[int, str, str]]) -> str | None:
    """After a pull of an unpinned tag: the digest the host got, pinned (or the pin another host recorded first).
    One command on the host; None when it has no digest of the tag's repository (a locally built image)."""
    _rc, out, _err = run(FACT % quote(ref))
    digest = digest_for(split_fact(out)[1], ref)
    return record(lock, ref, digest) if digest else None


def lock_path(inventory_file: Path) -> Path:
    return inventory_file.parent / FILE


def pinnable(ref: str, archive: str | None) -> bool:
    """A tag pulled from a registry: neither a digest nor an archive pins it already."""
    return "@" not in ref and not archive


def repository(ref: str) -> str:
    """The reference without its tag (a registry's port stays: host:5000/repo:tag -> host:5000/repo)."""
    last = ref.rsplit("/", 1)
    return ref.rsplit(":", 1)[0] if ":" in last[-1] else ref


class LockError(BkopsError):
    """images.lock cannot be read: which file, what is wrong, what to do (nothing was changed)."""


def read(path: Path) -> dict[str, str]:
    """The pins, each a reference and a sha256 digest; a file that is not exactly that is refused, never guessed."""
    if not path.exists():
        return {}
    fix = "fix the line, or delete it (or the file) to pin the tag anew at its next pull; nothing was changed"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise LockError(f"{path}: not YAML ({getattr(e, 'problem', None) or e})\n  fix: {fix}") from None
    if not isinstance(data, dict):
        raise LockError(f"{path}: not a mapping of image references to digests\n  fix: {fix}")
    for ref, digest in data.items():
        if not isinstance(ref, str) or not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            raise LockError(f"{path}: {ref!r}: {digest!r} is not a sha256 digest (sha256: and 64 hex digits)\n"
                            f"  fix: {fix}")
    return dict(data)


def record(path: Path, ref: str, digest: str) -> str:
    """Pin `ref` to `digest` unless it is pinned already; returns the pin in force (the first writer's: hosts
    provisioned in parallel may each have pulled the tag)."""
    if not DIGEST.fullmatch(digest):
        raise ValueError(f"{digest!r} is not a sha256 digest")
    with open(path.parent / f".{FILE}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pins = read(path)
        if ref not in pins:
            pins[ref] = digest
            atomic_write(path, (HEADER + yaml.safe_dump(pins, sort_keys=True)).encode(), 0o644)
        return pins[ref]


def split_fact(text: str) -> tuple[str, tuple[str, ...]]:
    """FACT's line: (image id, its repo digests); ("", ()) when the host lacks the image."""
    words = text.split()
    return (words[0], tuple(words[1:])) if words else ("", ())


def digest_for(repo_digests: tuple[str, ...], ref: str) -> str | None:
    """The digest the host's image has in `ref`'s repository (None: none known there)."""
    repo = repository(ref)
    for w in repo_digests:
        name, _, digest = w.partition("@")
        if name == repo and DIGEST.fullmatch(digest):
            return digest
    return None


def pull_pinned_script(ref: str, digest: str) -> str:
    """The pinned bytes under the tag the compose file names."""
    pinned = f"{repository(ref)}@{digest}"
    note = "{ echo " + quote(f"@@note pulling {pinned}") + " >&3; } 2>/dev/null || true\n"
    return (note + command("docker", "pull", "-q", pinned) + " >/dev/null\n"
            + command("docker", "tag", pinned, ref) + "\n")


def pinned_step(role: str, title: str, ref: str, have_digest: str | None, pin: str, notify: list[str]) -> Step:
    """A tag with a pin: ok when the host's image is the pinned one, else pulled by digest and tagged."""
    if have_digest == pin:
        return Step(role, title, False, f"pinned {pin[:19]} ({FILE})")
    return Step(role, title, True, f"pull the pinned {pin[:19]} ({FILE}); the host has "
                                   f"{have_digest[:19] if have_digest else 'none'}",
                script=pull_pinned_script(ref, pin), notify=list(notify))
