"""The CA's state on the operator machine: ensure_ca makes pki_dir (and the folders above it) 0700 and the key
0600, narrows a key left readable by others, and keeps the CA it finds; during a rotation each kind of
certificate is signed by the CA the rotation says (the next one only once it exists), and the trust bundle holds
both CAs; the rotation's state is 0600 and goes away when it ends."""
from __future__ import annotations

import stat

import yaml

from buildkit_ops.pki import certs


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_ca_makes_a_private_folder_and_key_and_keeps_and_narrows_what_it_finds(tmp_path):
    pki = tmp_path / "deep" / "pki"
    ca, made = certs.ensure_ca(pki, 10)
    assert made and mode(pki) == 0o700 and mode(pki / "ca.key") == 0o600
    (pki / "ca.key").chmod(0o640)
    again, made = certs.ensure_ca(pki, 10)
    assert not made and again.cert == ca.cert and mode(pki / "ca.key") == 0o600
    (pki / "ca.key").chmod(0o400)                       # (no bit for others: left as it is)
    certs.ensure_ca(pki, 10)
    assert mode(pki / "ca.key") == 0o400


def test_during_a_rotation_each_kind_is_signed_by_the_ca_the_rotation_says(tmp_path):
    ca, _ = certs.ensure_ca(tmp_path, 10)
    assert certs.signing_ca(tmp_path, "client").cert == ca.cert
    certs.save_rotation_state(tmp_path, {"phase": "clients-new", "signing": {"client": "next"}})
    assert mode(tmp_path / "rotation.yml") == 0o600
    assert yaml.safe_load((tmp_path / "rotation.yml").read_text())["signing"] == {"client": "next"}
    assert certs.signing_ca(tmp_path, "client").cert == ca.cert        # no next CA yet: the current one
    (tmp_path / "next").mkdir(mode=0o700)
    nxt = certs.create_ca(tmp_path / "next", 10, "buildkit-ops CA (next)")
    assert certs.signing_ca(tmp_path, "client").cert == nxt.cert
    assert certs.signing_ca(tmp_path, "server").cert == ca.cert        # servers: not yet
    bundle = certs.trust_bundle(tmp_path)
    assert bundle == (tmp_path / "ca.crt").read_bytes() + (tmp_path / "next" / "ca.crt").read_bytes()
    certs.save_rotation_state(tmp_path, None)
    assert not (tmp_path / "rotation.yml").exists() and certs.signing_ca(tmp_path, "client").cert == ca.cert
    certs.save_rotation_state(tmp_path, None)                          # (gone already: nothing to do)
