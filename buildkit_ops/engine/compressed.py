"""An upload (an image archive for `docker load`) gzip-compressed, once: docker load reads gzip, and a BuildKit
image shrinks to a third. The compressed bytes are kept in memory for the run (a fleet provisioned in parallel
sends the same image to every host) and on disk for the next runs, by the archive's path, time and size: the
lab's 92 MB BuildKit archive took 1.85 s of each fresh provision to compress (bench/provision.py, traced). Only
image archives travel this way: nothing secret is kept. A cache that cannot be written costs only the time."""
from __future__ import annotations

import hashlib
import os
import threading
import zlib
from pathlib import Path

from buildkit_ops.engine.local_files import atomic_write

CHUNK = 1 << 20
_kept: dict[tuple[str, int, int], list[bytes]] = {}
_lock = threading.Lock()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "buildkit-ops" / "uploads"


def upload_size(path: str) -> int:
    """How many bytes an upload of `path` sends (compressed)."""
    return sum(len(c) for c in gzipped(path))


def gzipped(path: str) -> list[bytes]:
    """The file gzip-compressed, in chunks."""
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_mtime_ns, st.st_size)
    with _lock:   # (the first host compresses; the others wait for it, then stream the same bytes)
        if key not in _kept:
            data = _from_disk(*key)
            _kept[key] = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [b""]
    return _kept[key]


def _from_disk(path: str, mtime_ns: int, size: int) -> bytes:
    """The compressed file from the disk cache, else compressed now and kept there (the archive's earlier
    versions' entries go)."""
    folder = cache_dir()
    by_path = hashlib.sha256(path.encode()).hexdigest()[:16]
    entry = folder / f"{by_path}-{hashlib.sha256(f'{mtime_ns} {size}'.encode()).hexdigest()[:16]}.gz"
    try:
        return entry.read_bytes()
    except OSError:
        pass
    z = zlib.compressobj(1, zlib.DEFLATED, 31)
    parts = []
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            parts.append(z.compress(chunk))
    parts.append(z.flush())
    data = b"".join(parts)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for old in folder.glob(f"{by_path}-*.gz"):
            old.unlink(missing_ok=True)
        atomic_write(entry, data, 0o600)
    except OSError:
        pass
    return data
