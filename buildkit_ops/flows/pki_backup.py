"""pki-export / pki-import: the operator's whole PKI state (pki_dir: the CA, every certificate and key, the
revocations, CI runners' folders) in one file sealed with age, to back it up or keep it in the team's
repository, and to give it to a second operator. Losing pki_dir without one means a new CA: every server
re-provisioned and every client issued again.

pki_dir/exported.yml records when the state was last exported and which CA it held: `status` warns while the CA
has changed since (or was never exported)."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from buildkit_ops.engine.local_files import atomic_write, exchange_dirs
from buildkit_ops.errors import BkopsError
from buildkit_ops.pki import archive, sealed

EXPORTED = "exported.yml"


class PkiBackupError(BkopsError):
    pass


def ca_fingerprint(pki_dir: Path) -> str | None:
    crt = pki_dir / "ca.crt"
    return hashlib.sha256(crt.read_bytes()).hexdigest() if crt.exists() else None


def _state(pki_dir: Path) -> bytes:
    """The archive of what is worth keeping: all but this machine's own export record."""
    return archive.pack(pki_dir, leave_out=frozenset({EXPORTED}))


def export(pki_dir: Path, file: Path, to: list[str], phrase: str | None) -> dict[str, Any]:
    fingerprint = ca_fingerprint(pki_dir)
    if fingerprint is None:
        raise PkiBackupError(f"{pki_dir} holds no CA yet: nothing to export\n  fix: run `bkops provision` first "
                             f"(it creates the CA), or point -i at the inventory whose pki_dir holds it")
    data = _state(pki_dir)
    blob = sealed.seal(data, to, phrase)
    atomic_write(file, blob, 0o600)
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    atomic_write(pki_dir / EXPORTED, yaml.safe_dump({"exported_at": when, "file": str(file),
                                                     "ca_sha256": fingerprint}).encode(), 0o600)
    return {"file": str(file), "files": sum(1 for v in archive.members(data).values() if v[1] is not None),
            "bytes": len(blob), "for": "recipients" if to else "passphrase", "exported_at": when}


def _current(pki_dir: Path) -> dict[str, tuple[int, bytes | None]]:
    return archive.members(_state(pki_dir)) if (pki_dir / "ca.crt").exists() else {}


def import_(pki_dir: Path, file: Path, keys: list[Path], phrase: str | None, replace: bool) -> dict[str, Any]:
    """The file's state into pki_dir. An existing, different state is moved aside (to pki_dir.before-import-TIME)
    only with `replace`: never lost, never overwritten by accident."""
    try:
        blob = file.read_bytes()
    except OSError as e:
        raise PkiBackupError(f"{file}: cannot be read ({e.strerror})") from None
    data = sealed.open_sealed(blob, keys, phrase)
    incoming = archive.members(data)
    have = _current(pki_dir)
    if have == incoming:
        return {"changed": False, "pki_dir": str(pki_dir), "files": len(incoming)}
    aside = None
    if pki_dir.exists() and any(pki_dir.iterdir()):
        if not replace:
            other = "another CA" if have.get("ca.crt") != incoming["ca.crt"] else "the same CA in another state"
            raise PkiBackupError(f"{pki_dir} already holds {other}: nothing was changed\n  fix: add --replace to "
                                 f"move it aside (to {pki_dir.name}.before-import-TIME, kept) and import {file}")
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = pki_dir.with_name(f"{pki_dir.name}.before-import-{stamp}")
    pki_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=pki_dir.parent, prefix=f".{pki_dir.name}.import-"))
    try:
        archive.unpack(data, tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if aside is None:
        os.replace(tmp, pki_dir)   # (onto nothing, or an empty folder: one rename)
    else:
        # one step: a crash leaves the old state or the new one in pki_dir, never none; tmp then holds the old
        # state, which gets its kept name
        exchange_dirs(tmp, pki_dir)
        os.replace(tmp, aside)
    return {"changed": True, "pki_dir": str(pki_dir), "files": sum(1 for v in incoming.values() if v[1] is not None),
            "moved_aside": str(aside) if aside else None}


def warning(pki_dir: Path) -> str | None:
    """Why status should remind the operator to export, if it should."""
    fingerprint = ca_fingerprint(pki_dir)
    if fingerprint is None:
        return None
    record = pki_dir / EXPORTED
    try:
        last = yaml.safe_load(record.read_text()) if record.exists() else None
    except (OSError, yaml.YAMLError):
        last = None
    if not isinstance(last, dict) or last.get("ca_sha256") != fingerprint:
        said = "was never exported" if not isinstance(last, dict) else "changed since its last export"
        return (f"the CA in {pki_dir} {said}: run `bkops pki export FILE` and keep FILE safe (losing {pki_dir.name} "
                f"means a new CA, every server re-provisioned and every client issued again)")
    return None
