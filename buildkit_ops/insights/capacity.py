"""Will the disk hold the cache? The cache against the GC limit the inventory sets, and the disk's free space:
when the cache may still grow by more than the disk has free, the disk fills before the GC acts."""
from __future__ import annotations

from dataclasses import dataclass

from buildkit_ops.inventory import GC

# the filesystem of Docker's volumes, where the cache volume lives
DISK_SNIPPET = "echo @@disk; df -B1 --output=size,avail /var/lib/docker 2>/dev/null | tail -1"


def _bytes(space: int | str | None, disk_size: int) -> int | None:
    if space is None:
        return None
    if isinstance(space, str) and space.endswith("%"):
        return disk_size * int(space[:-1]) // 100
    return int(space)


def gc_limit(gc: GC, disk_size: int) -> int | None:
    """The most the cache keeps before the GC frees it: the largest size a rule prunes down to (max_used,
    reserved) or the default rules' keep_storage; None when the GC is off."""
    if not gc.enabled:
        return None
    sizes = [_bytes(v, disk_size) for p in gc.policies for v in (p.max_used, p.reserved)]
    sizes += [_bytes(v, disk_size) for v in (gc.max_used, gc.reserved)]
    found = [s for s in sizes if s is not None]
    return max(found) if found else _bytes(gc.keep_storage, disk_size)


@dataclass
class Disk:
    disk_size: int | None        # bytes of the cache's filesystem (None: unknown)
    disk_free: int | None
    gc_limit: int | None         # the most the cache keeps before the GC frees it (None: GC off, or unknown)


def disk(gc: GC, disk_text: str | None) -> Disk:
    """The cache's filesystem (DISK_SNIPPET's output) and the GC limit on it."""
    try:
        size, avail = (int(x) for x in (disk_text or "").split()[:2])
    except ValueError:
        return Disk(None, None, None)
    return Disk(size, avail, gc_limit(gc, size))


def warning(gc: GC, d: Disk, cache_total: int) -> str | None:
    """Said when the disk would fill before the GC limit is reached (or the GC is off)."""
    if d.disk_free is None:
        return None
    if d.gc_limit is None:
        return "the cache GC is off: the cache grows until the disk is full" if not gc.enabled else None
    growth = max(0, d.gc_limit - cache_total)
    if growth > d.disk_free:
        return (f"the cache may still grow by {growth / 1e9:.1f} GB before the GC frees any, but the disk "
                f"has {d.disk_free / 1e9:.1f} GB free: lower buildkit.gc (max_used) or add disk")
    return None
