"""An image archive is compressed once: the next run (a new process) reads the compressed bytes from the disk
cache instead of compressing again; a new version of the archive is compressed anew and replaces the old entry."""
from __future__ import annotations

import gzip
import os

from buildkit_ops.engine import compressed


def test_the_next_run_reads_the_compressed_archive_from_the_cache_and_a_new_one_replaces_it(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    archive = tmp_path / "image.tar"
    archive.write_bytes(os.urandom(100_000) + b"\0" * 3_000_000)
    first = b"".join(compressed.gzipped(str(archive)))
    assert gzip.decompress(first) == archive.read_bytes() and len(first) < archive.stat().st_size
    [entry] = list(compressed.cache_dir().iterdir())
    assert oct(entry.stat().st_mode & 0o777) == "0o600"
    compressed._kept.clear()                                   # (a new process)
    entry.write_bytes(gzip.compress(b"kept"))                  # (what is read is the cache's)
    assert gzip.decompress(b"".join(compressed.gzipped(str(archive)))) == b"kept"
    archive.write_bytes(b"another version" * 1000)             # (a new archive: compressed anew, replaces the entry)
    again = b"".join(compressed.gzipped(str(archive)))
    assert gzip.decompress(again) == archive.read_bytes()
    assert len(list(compressed.cache_dir().iterdir())) == 1


def test_a_cache_that_cannot_be_written_costs_only_the_time(tmp_path, monkeypatch):
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    archive = tmp_path / "image.tar"
    archive.write_bytes(b"layer" * 1000)
    assert gzip.decompress(b"".join(compressed.gzipped(str(archive)))) == archive.read_bytes()
