"""The whole PKI state as one archive: the CA (and a next or retired one), every certificate and key, the
revocations and the CRL, CI runners' folders. Packed in a fixed order with fixed owners and times (the same
state packs to the same bytes), each file's mode kept; unpacked only as plain files and folders below the
destination (an archive that names anything else is refused whole, before anything is written)."""
from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

from buildkit_ops.errors import BkopsError

# never part of the state: half-written files of a run that was killed (local_files.atomic_write's temp files)
SKIP_PREFIX = "."


class BadArchive(BkopsError):
    pass


def pack(pki_dir: Path, leave_out: frozenset[str] = frozenset()) -> bytes:
    """`leave_out`: names of files at the top of pki_dir that are no part of the state."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(pki_dir.rglob("*")):
            rel = path.relative_to(pki_dir)
            if any(part.startswith(SKIP_PREFIX) for part in rel.parts) or path.is_symlink() or \
                    rel.as_posix() in leave_out:
                continue
            info = tarfile.TarInfo(rel.as_posix())
            info.mode = stat.S_IMODE(path.stat().st_mode)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif path.is_file():
                data = path.read_bytes()
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def members(data: bytes) -> dict[str, tuple[int, bytes | None]]:
    """Relative path -> (mode, content; None for a folder), or BadArchive: anything but a plain file or folder
    below the destination (an absolute path, `..`, a link, a device) refuses the whole archive."""
    out: dict[str, tuple[int, bytes | None]] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for m in tar.getmembers():
                parts = Path(m.name).parts
                if m.name.startswith("/") or ".." in parts or not parts or not (m.isfile() or m.isdir()):
                    raise BadArchive(f"the archive holds {m.name!r}, which is not a file or folder of a PKI")
                f = tar.extractfile(m) if m.isfile() else None
                out[Path(m.name).as_posix()] = (stat.S_IMODE(m.mode) & 0o755 if m.isdir() else
                                                 stat.S_IMODE(m.mode) & 0o644, f.read() if f else None)
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BadArchive(f"not a PKI archive ({e})") from None
    if "ca.crt" not in out or "ca.key" not in out:
        raise BadArchive("the archive holds no CA (ca.crt and ca.key)")
    return out


def _folders(path: Path) -> None:
    """A folder and every missing one above it, each 0700 (mkdir's parents= would make those above 0755)."""
    if not path.is_dir():
        _folders(path.parent)
        path.mkdir(mode=0o700)
        path.chmod(0o700)


def unpack(data: bytes, dest: Path) -> None:
    """Write the archive's files into `dest` (a new, empty folder): folders 0700 (or as they were, never less for
    their owner), keys as they were (0600)."""
    for rel, (mode, content) in sorted(members(data).items()):
        path = dest / rel
        if content is None:
            _folders(path)
            path.chmod(mode | 0o700)
        else:
            _folders(path.parent)
            path.write_bytes(content)
            path.chmod(mode)
