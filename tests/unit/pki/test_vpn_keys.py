"""The VPN's public keys in pki_dir: each kept under its kind and name, readable back, replaced only when it
changed, forgotten on removal; anything that is not a WireGuard key is refused, and a CI runner's pair is made
once, its private key 0600."""
from __future__ import annotations

import base64
import stat

import pytest

from buildkit_ops.pki import vpn_keys

PRIVATE = base64.b64encode(bytes(range(1, 33))).decode()
KEY, OTHER = vpn_keys.public_of(PRIVATE), vpn_keys.public_of(base64.b64encode(bytes(range(2, 34))).decode())


def test_a_public_key_is_kept_under_its_kind_and_name_and_forgotten(tmp_path):
    path = tmp_path / "vpn" / "hosts" / "build1.pub"
    assert vpn_keys.read(tmp_path, "hosts", "build1") is None
    assert vpn_keys.record(tmp_path, "hosts", "build1", KEY) is True
    assert path.read_text() == KEY + "\n" and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert vpn_keys.read(tmp_path, "hosts", "build1") == KEY
    assert vpn_keys.read(tmp_path, "clients", "build1") is None       # (a client's key is another file)
    assert vpn_keys.record(tmp_path, "hosts", "build1", KEY) is False  # the same key: nothing written
    assert vpn_keys.record(tmp_path, "hosts", "build1", OTHER) is True and vpn_keys.read(tmp_path, "hosts", "build1") == OTHER
    vpn_keys.forget(tmp_path, "hosts", "build1")
    assert not path.exists() and vpn_keys.read(tmp_path, "hosts", "build1") is None
    vpn_keys.forget(tmp_path, "hosts", "build1")                       # (forgetting twice is no error)


def test_what_is_not_a_key_is_refused_and_never_read_back(tmp_path):
    with pytest.raises(ValueError, match=r"^laptop: 'not a key' is not a WireGuard public key$"):
        vpn_keys.record(tmp_path, "clients", "laptop", "not a key")
    assert not (tmp_path / "vpn").exists()
    path = tmp_path / "vpn" / "clients" / "laptop.pub"
    path.parent.mkdir(parents=True)
    path.write_text(KEY[:-2] + "B=\n")       # the 43rd character carries 4 bits only: B is no key's
    assert vpn_keys.read(tmp_path, "clients", "laptop") is None
    assert vpn_keys.is_key(KEY) and not vpn_keys.is_key(KEY + "\n") and not vpn_keys.is_key(KEY[1:])


def test_a_runners_pair_is_made_once_and_its_private_key_stays_in_its_file(tmp_path):
    path = tmp_path / "wg.key"
    public = vpn_keys.local_pair(path)
    private = path.read_text().strip()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and vpn_keys.public_of(private) == public
    assert vpn_keys.local_pair(path) == public and path.read_text().strip() == private
    assert vpn_keys.is_key(public) and public != private
