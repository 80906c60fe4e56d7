"""The cache against its GC limit and the disk."""
from __future__ import annotations

from buildkit_ops import inventory as I
from buildkit_ops.insights import capacity


def gc(**kw):
    return I.GC(enabled=True, keep_storage=10 * 10**9, policies=[I.GCPolicy(max_used=5 * 10**9),
                                                                  I.GCPolicy(all=True, max_used=kw.pop("top", 10**10))],
                **kw)


def test_the_disk_that_would_fill_before_the_gc_acts_is_a_warning():
    info, warning = capacity.assess(gc(), 2 * 10**9, f"{100 * 10**9} {50 * 10**9}")
    assert info == {"disk_size": 100 * 10**9, "disk_free": 50 * 10**9, "gc_limit": 10**10} and warning is None
    info, warning = capacity.assess(gc(), 2 * 10**9, f"{100 * 10**9} {3 * 10**9}")
    assert "grow by 8.0 GB before the GC frees any, but the disk has 3.0 GB free" in warning
    info, _ = capacity.assess(gc(top="50%"), 0, f"{100 * 10**9} {80 * 10**9}")
    assert info["gc_limit"] == 50 * 10**9
    _, warning = capacity.assess(I.GC(enabled=False, keep_storage=1, policies=[]), 0, "100 50")
    assert "GC is off" in warning
