"""The PKI state's generation: 0 before any change (or when the file is unreadable as a number), one more per
change, kept 0600 beside the CA; a host's record read back, or None."""
from __future__ import annotations

from buildkit_ops.pki import generation


def test_the_generation_counts_changes_and_a_hosts_record_is_read_back(tmp_path):
    assert generation.current(tmp_path) == 0
    (tmp_path / "generation").write_text("\n")
    assert generation.current(tmp_path) == 0
    (tmp_path / "generation").write_text("nonsense\n")
    assert generation.current(tmp_path) == 0
    (tmp_path / "generation").unlink()
    assert [generation.bump(tmp_path), generation.bump(tmp_path)] == [1, 2]
    assert (tmp_path / "generation").read_text() == "2\n" and generation.current(tmp_path) == 2
    assert (tmp_path / "generation").stat().st_mode & 0o777 == 0o600
    assert [generation.parse(t) for t in ("7\n", " 12 ", "", "x", "-1", "3.5")] == [7, 12, None, None, None, None]
