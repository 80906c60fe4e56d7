"""Files on the operator machine are never half-written."""
from __future__ import annotations

from buildkit_ops.engine.local_files import atomic_write


def test_atomic_write_leaves_no_temp_files(tmp_path):
    atomic_write(tmp_path / "f", b"one", 0o600)
    atomic_write(tmp_path / "f", b"two", 0o600)
    assert [p.name for p in tmp_path.iterdir()] == ["f"]
    assert (tmp_path / "f").read_bytes() == b"two"
