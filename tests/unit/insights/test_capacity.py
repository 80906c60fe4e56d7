"""The cache against its GC limit and the disk."""
from __future__ import annotations

from buildkit_ops import inventory as I
from buildkit_ops.insights import capacity


def gc(**kw):
    return I.GC(enabled=True, keep_storage=10 * 10**9, policies=[I.GCPolicy(max_used=5 * 10**9),
                                                                  I.GCPolicy(all=True, max_used=kw.pop("top", 10**10))],
                reserved=None, max_used=None, min_free=None)


def test_the_disk_that_would_fill_before_the_gc_acts_is_a_warning():
    d = capacity.disk(gc(), f"{100 * 10**9} {50 * 10**9}")
    assert d == capacity.Disk(100 * 10**9, 50 * 10**9, 10**10) and capacity.warning(gc(), d, 2 * 10**9) is None
    d = capacity.disk(gc(), f"{100 * 10**9} {3 * 10**9}")
    assert "grow by 8.0 GB before the GC frees any, but the disk has 3.0 GB free" in capacity.warning(gc(), d, 2 * 10**9)
    assert capacity.disk(gc(top="50%"), f"{100 * 10**9} {80 * 10**9}").gc_limit == 50 * 10**9
    off = I.GC(enabled=False, keep_storage=1, policies=[], reserved=None, max_used=None, min_free=None)
    assert "GC is off" in capacity.warning(off, capacity.disk(off, "100 50"), 0)
    assert capacity.warning(gc(), capacity.disk(gc(), "df: no such file"), 0) is None   # unknown disk: no guess
