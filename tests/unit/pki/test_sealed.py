"""Sealing the PKI archive with age: for recipients (each identity opens it) or a passphrase; every refusal says
what is wrong and how to fix it, exactly."""
from __future__ import annotations

import pytest
from pyrage import x25519

from buildkit_ops.pki import sealed


def keypair(tmp_path, name: str):
    ident = x25519.Identity.generate()
    f = tmp_path / name
    f.write_text(f"# created: now\n# public key: {ident.to_public()}\n{ident}\n")
    return str(ident.to_public()), f


def test_sealed_for_two_recipients_each_identity_opens_it_and_another_does_not(tmp_path):
    (pub1, id1), (pub2, id2), (_, stranger) = (keypair(tmp_path, n) for n in ("a", "b", "c"))
    box = sealed.seal(b"the pki", [pub1, f" {pub2} "], None)
    assert sealed.open_sealed(box, [id1], None) == sealed.open_sealed(box, [id2], None) == b"the pki"
    assert sealed.open_sealed(box, [stranger, id2], None) == b"the pki"     # (every identity given is tried)
    with pytest.raises(sealed.SealError) as e:
        sealed.open_sealed(box, [stranger], None)
    assert str(e.value) == ("the file cannot be opened with that identity: wrong key or passphrase, or not a `bkops "
                            "pki export` file")


def test_sealed_with_a_passphrase_opens_with_it_only(tmp_path):
    box = sealed.seal(b"the pki", [], "correct horse battery")
    assert sealed.open_sealed(box, [], "correct horse battery") == b"the pki"
    with pytest.raises(sealed.SealError) as e:
        sealed.open_sealed(box, [], "wrong")
    assert str(e.value) == ("the file cannot be opened with that passphrase: wrong key or passphrase, or not a "
                            "`bkops pki export` file")


def test_each_refusal_says_what_and_how(tmp_path):
    def refused(call) -> str:
        with pytest.raises(sealed.SealError) as e:
            call()
        return str(e.value)
    assert refused(lambda: sealed.seal(b"x", [], None)) == (
        "say whom the export is for\n  fix: give --recipient age1... (repeatable), or a passphrase "
        "(BKOPS_PKI_PASSPHRASE, or typed at the prompt)")
    assert refused(lambda: sealed.seal(b"x", ["age1notakeyatall000000"], None)) == (
        "--recipient age1notakeyatall...: not an age public key\n  fix: give the `age1...` line that `age-keygen` "
        "printed as the public key")
    assert refused(lambda: sealed.open_sealed(b"x", [], None)) == (
        "say how to open it\n  fix: give --identity FILE (an age identity), or the passphrase "
        "(BKOPS_PKI_PASSPHRASE, or typed at the prompt)")
    missing = tmp_path / "nowhere"
    assert refused(lambda: sealed.identities([missing])) == f"--identity {missing}: cannot be read (No such file or " \
                                                            f"directory)"
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    assert refused(lambda: sealed.identities([empty])) == (f"--identity {empty}: holds no age identity (an "
                                                           f"AGE-SECRET-KEY-1... line)")
    bad = tmp_path / "bad"
    bad.write_text("AGE-SECRET-KEY-1NOPE\n")
    assert refused(lambda: sealed.identities([bad])) == (f"--identity {bad}: its AGE-SECRET-KEY line is not a valid "
                                                         f"identity")
    (_, a), (_, b) = keypair(tmp_path, "k1"), keypair(tmp_path, "k2")
    assert len(sealed.identities([a, b])) == 2                                 # (every file's key, not the last)
