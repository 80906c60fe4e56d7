"""pki-export and pki-import: the whole PKI state sealed with age (real pyrage) for a passphrase or for age keys,
opened back byte for byte with each file's mode; a second state is never overwritten by accident; an archive that
names anything but files and folders below pki_dir is refused whole; status reminds until the CA is exported."""
from __future__ import annotations

import io
import tarfile

import pytest
from pyrage import x25519

from buildkit_ops.flows import pki_backup
from buildkit_ops.pki import archive, certs, generation, sealed

PHRASE = "correct horse battery staple"
# (a passphrase costs scrypt's work each time: the tests that need no passphrase use age keys)
OPS = x25519.Identity.generate()
TO = [str(OPS.to_public())]


@pytest.fixture
def ops_key(tmp_path):
    key = tmp_path / "ops.key"
    key.write_text(f"{OPS}\n")
    return [key]


@pytest.fixture
def pki_dir(tmp_path):
    d = tmp_path / "ops1" / ".pki"
    ca = certs.create_ca(d, 30)
    generation.bump(d)
    crt, key = certs.issue(ca, "laptop", 30)
    leaf = certs.client_paths(d, "laptop")
    leaf.crt.parent.mkdir(parents=True, mode=0o700)
    leaf.crt.write_bytes(crt)
    leaf.key.write_bytes(key)
    leaf.key.chmod(0o600)
    (d / ".rotation.yml.x1y2z3").write_text("half-written\n")   # (a killed run's temp file: no part of the state)
    return d


def files(d):
    return {p.relative_to(d).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o777)
            for p in sorted(d.rglob("*")) if p.is_file() and not p.name.startswith(".")
            and p.name != pki_backup.EXPORTED}


def test_a_passphrase_export_opens_back_into_a_second_operators_empty_pki_dir(pki_dir, tmp_path):
    out = pki_backup.export(pki_dir, tmp_path / "pki.age", [], PHRASE)
    assert out["files"] == 5 and (tmp_path / "pki.age").stat().st_mode & 0o777 == 0o600   # (with `generation`)
    blob = (tmp_path / "pki.age").read_bytes()
    assert blob.startswith(b"age-encryption.org/v1") and b"PRIVATE KEY" not in blob
    second = tmp_path / "ops2" / ".pki"
    got = pki_backup.import_(second, tmp_path / "pki.age", [], PHRASE, replace=False)
    assert got["changed"] and files(second) == files(pki_dir)
    assert (second / "ca.key").stat().st_mode & 0o777 == 0o600
    assert generation.current(second) == generation.current(pki_dir) >= 1   # two operators can tell who is behind
    # the same file again: nothing changes
    assert pki_backup.import_(second, tmp_path / "pki.age", [], PHRASE, replace=False)["changed"] is False


def test_an_export_for_age_keys_opens_with_an_identity_only(pki_dir, tmp_path):
    alice, bob = x25519.Identity.generate(), x25519.Identity.generate()
    pki_backup.export(pki_dir, tmp_path / "pki.age", [str(alice.to_public()), str(bob.to_public())], None)
    key = tmp_path / "bob.key"
    key.write_text(f"# created: 2026-12-01\n# public key: {bob.to_public()}\n{bob}\n")
    second = tmp_path / "ops2" / ".pki"
    assert pki_backup.import_(second, tmp_path / "pki.age", [key], None, replace=False)["changed"]
    assert files(second) == files(pki_dir)
    stranger = tmp_path / "eve.key"
    stranger.write_text(f"{x25519.Identity.generate()}\n")
    with pytest.raises(sealed.SealError, match="cannot be opened with that identity"):
        pki_backup.import_(tmp_path / "ops3" / ".pki", tmp_path / "pki.age", [stranger], None, replace=False)


def test_a_wrong_passphrase_changes_nothing(pki_dir, tmp_path):
    pki_backup.export(pki_dir, tmp_path / "pki.age", [], PHRASE)
    with pytest.raises(sealed.SealError, match="wrong key or passphrase"):
        pki_backup.import_(tmp_path / "ops2" / ".pki", tmp_path / "pki.age", [], "not it", replace=False)
    assert not (tmp_path / "ops2").exists()


def test_another_state_is_never_overwritten_by_accident_and_kept_aside_with_replace(pki_dir, tmp_path, ops_key):
    pki_backup.export(pki_dir, tmp_path / "pki.age", TO, None)
    other = tmp_path / "ops2" / ".pki"
    certs.create_ca(other, 30, name="someone else's CA")
    theirs = files(other)
    with pytest.raises(pki_backup.PkiBackupError, match="already holds another CA: nothing was changed"):
        pki_backup.import_(other, tmp_path / "pki.age", ops_key, None, replace=False)
    assert files(other) == theirs
    got = pki_backup.import_(other, tmp_path / "pki.age", ops_key, None, replace=True)
    assert files(other) == files(pki_dir)
    assert files(tmp_path / "ops2" / got["moved_aside"].rsplit("/", 1)[1]) == theirs


def test_an_import_cut_after_its_swap_leaves_the_new_state_and_keeps_the_old(pki_dir, tmp_path, ops_key,
                                                                            monkeypatch):
    """The swap is one step: a crash right after it (the old state not yet under its kept name) still leaves a
    whole pki_dir, the imported one, and the old state in the import's hidden folder beside it."""
    pki_backup.export(pki_dir, tmp_path / "pki.age", TO, None)
    other = tmp_path / "ops2" / ".pki"
    certs.create_ca(other, 30, name="someone else's CA")
    theirs = files(other)

    def crash(src, dst):
        raise KeyboardInterrupt
    monkeypatch.setattr(pki_backup.os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        pki_backup.import_(other, tmp_path / "pki.age", ops_key, None, replace=True)
    assert files(other) == files(pki_dir)
    [kept] = (tmp_path / "ops2").glob(f".{other.name}.import-*")
    assert files(kept) == theirs


@pytest.mark.parametrize("name,kind", [("../escape", tarfile.REGTYPE), ("/etc/cron.d/x", tarfile.REGTYPE),
                                       ("link", tarfile.SYMTYPE), ("dev", tarfile.CHRTYPE)])
def test_an_archive_naming_anything_but_files_below_pki_dir_is_refused_whole(tmp_path, name, kind, ops_key):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for n, data in (("ca.crt", b"c"), ("ca.key", b"k")):
            info = tarfile.TarInfo(n)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        bad = tarfile.TarInfo(name)
        bad.type, bad.linkname = kind, "/etc/passwd"
        tar.addfile(bad, io.BytesIO(b"") if kind == tarfile.REGTYPE else None)
    (tmp_path / "evil.age").write_bytes(sealed.seal(buf.getvalue(), TO, None))
    with pytest.raises(archive.BadArchive, match="not a file or folder of a PKI"):
        pki_backup.import_(tmp_path / ".pki", tmp_path / "evil.age", ops_key, None, replace=False)
    assert not (tmp_path / ".pki").exists() and not list(tmp_path.glob(".*import*"))


def test_status_reminds_until_the_ca_is_exported_and_again_once_it_changes(pki_dir, tmp_path):
    assert "was never exported" in pki_backup.warning(pki_dir)
    pki_backup.export(pki_dir, tmp_path / "pki.age", TO, None)
    assert pki_backup.warning(pki_dir) is None
    certs.create_ca(pki_dir, 30, name="the next CA")        # (a rotation's new CA)
    assert "changed since its last export" in pki_backup.warning(pki_dir)


def test_nothing_to_export_before_a_ca_exists(tmp_path):
    with pytest.raises(pki_backup.PkiBackupError, match="holds no CA yet"):
        pki_backup.export(tmp_path / ".pki", tmp_path / "pki.age", TO, None)
    assert not (tmp_path / "pki.age").exists()
