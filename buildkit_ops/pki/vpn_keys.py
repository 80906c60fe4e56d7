"""The VPN's public keys (`pki_dir/vpn/hosts/NAME.pub`, `pki_dir/vpn/clients/NAME.pub`): each machine makes its own
key pair and keeps the private key; the operator machine learns a public key from the machine's facts (a host's
after provision, a client's after add-client made it) and hands it to the other side's peers. Public keys are not
secrets, yet they live with the PKI state (pki-export carries them): a key is never an inventory value."""
from __future__ import annotations

import base64
import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from buildkit_ops.engine.local_files import atomic_write

# A WireGuard key: 32 bytes in base64 (44 characters, the last one `=`); the 43rd carries the last 4 bits only.
KEY = re.compile(r"[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=")


def is_key(text: str) -> bool:
    return bool(KEY.fullmatch(text))


def _path(pki_dir: Path, kind: str, name: str) -> Path:
    return pki_dir / "vpn" / kind / f"{name}.pub"


def read(pki_dir: Path, kind: str, name: str) -> str | None:
    """A machine's public key (kind: hosts or clients), or None when it is not known yet."""
    try:
        text = _path(pki_dir, kind, name).read_text().strip()
    except FileNotFoundError:
        return None
    return text if is_key(text) else None


def record(pki_dir: Path, kind: str, name: str, key: str) -> bool:
    """Keep a machine's public key as its facts gave it; True when it is new or changed."""
    if not is_key(key):
        raise ValueError(f"{name}: {key[:60]!r} is not a WireGuard public key")
    if read(pki_dir, kind, name) == key:
        return False
    atomic_write(_path(pki_dir, kind, name), f"{key}\n".encode(), 0o644)
    return True


def forget(pki_dir: Path, kind: str, name: str) -> None:
    _path(pki_dir, kind, name).unlink(missing_ok=True)


def _raw(data: bytes) -> str:
    return base64.b64encode(data).decode()


def public_of(private: str) -> str:
    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private))
    return _raw(key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def local_pair(path: Path) -> str:
    """The key pair of a machine the operator cannot reach (a CI runner): made here once, its private key kept in
    `path` (0600, in the runner's 0700 folder, to travel as a CI secret as its client key does). Returns the public
    key."""
    try:
        private = path.read_text().strip()
    except FileNotFoundError:
        key = X25519PrivateKey.generate()
        private = _raw(key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                         serialization.NoEncryption()))
        atomic_write(path, f"{private}\n".encode(), 0o600)
    return public_of(private)
