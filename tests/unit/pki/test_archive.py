"""The PKI archive itself: the same state packs to the same bytes (fixed times and owners, leftovers and links
left out), modes come back as they were but never wider (no group or other write), a plain tar or one without
the CA is refused with its reason, and unpacking makes missing folders 0700, also for a file whose folder the
archive does not list."""
from __future__ import annotations

import gzip
import io
import stat
import tarfile

import pytest

from buildkit_ops.pki import archive


def state(tmp_path):
    d = tmp_path / "pki"
    (d / "clients" / "laptop").mkdir(parents=True)
    (d / "ca.crt").write_bytes(b"crt\n")
    (d / "ca.key").write_bytes(b"key\n")
    (d / "ca.key").chmod(0o600)
    (d / "clients" / "laptop" / "client.crt").write_bytes(b"leaf\n")
    (d / ".ca.key.tmp1").write_bytes(b"half\n")              # a killed run's temp file
    (d / "link").symlink_to(d / "ca.key")                     # a link: never followed, never packed
    (d / "lock").write_bytes(b"")                             # left out on request
    return d


def test_the_same_state_packs_to_the_same_bytes_with_fixed_owners_and_times(tmp_path):
    d = state(tmp_path)
    data = archive.pack(d, frozenset({"lock"}))
    assert archive.pack(d, frozenset({"lock"})) == data
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        got = tar.getmembers()
    assert [m.name for m in got] == ["ca.crt", "ca.key", "clients", "clients/laptop", "clients/laptop/client.crt"]
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in got} == {(0, 0, 0, "", "")}
    # (PAX is also tarfile's default format: a mutant that leaves format= out packs the same bytes)


def make(entries):
    """A gzipped tar of (name, mode, content or None for a folder), written as is."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, mode, content in entries:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if content is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


CA = [("ca.crt", 0o644, b"crt\n"), ("ca.key", 0o600, b"key\n")]


def test_modes_come_back_as_they_were_but_never_wider():
    got = archive.members(make([*CA, ("ci", 0o755, None), ("ci/r1", 0o777, None), ("ci/r1/key.pem", 0o607, b"k"),
                                ("ci/r1/x", 0o666, b"x")]))
    assert {k: v[0] for k, v in got.items()} == {"ca.crt": 0o644, "ca.key": 0o600, "ci": 0o755, "ci/r1": 0o755,
                                                 "ci/r1/key.pem": 0o604, "ci/r1/x": 0o644}
    assert got["ci"][1] is None and got["ci/r1/key.pem"][1] == b"k"


def test_a_plain_tar_and_an_archive_without_the_ca_are_refused_with_the_reason():
    plain = gzip.decompress(make(CA))
    with pytest.raises(archive.BadArchive) as e:
        archive.members(plain)
    assert str(e.value).startswith("not a PKI archive (")
    for half in (CA[:1], CA[1:]):
        with pytest.raises(archive.BadArchive) as e:
            archive.members(make(half))
        assert str(e.value) == "the archive holds no CA (ca.crt and ca.key)"


def test_unpacking_makes_missing_folders_0700_also_for_files_whose_folder_is_not_listed(tmp_path):
    dest = tmp_path / "new" / "pki"
    archive.unpack(make([*CA, ("clients/laptop/client.crt", 0o644, b"a"), ("clients/laptop/client.key", 0o600, b"b"),
                         ("ci", 0o755, None)]), dest)
    for folder in (dest.parent, dest, dest / "clients", dest / "clients" / "laptop"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((dest / "ci").stat().st_mode) == 0o755 | 0o700
    assert (dest / "clients" / "laptop" / "client.key").read_bytes() == b"b"
    assert stat.S_IMODE((dest / "clients" / "laptop" / "client.key").stat().st_mode) == 0o600
