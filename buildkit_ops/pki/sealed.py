"""Sealing the PKI archive with age (through pyrage, its Python binding): for recipients' public keys
(`age1...`: each holder of a matching identity can open it) or for a passphrase (scrypt). The file is age's own
format, so `age -d` opens it too."""
from __future__ import annotations

from pathlib import Path

import pyrage
from pyrage import passphrase as age_passphrase
from pyrage import x25519

from buildkit_ops.errors import BkopsError


class SealError(BkopsError):
    pass


def recipients(keys: list[str]) -> list[object]:
    out = []
    for k in keys:
        try:
            out.append(x25519.Recipient.from_str(k.strip()))
        except Exception:   # pyrage raises its own RecipientError
            raise SealError(f"--recipient {k.strip()[:16]}...: not an age public key\n  fix: give the "
                            f"`age1...` line that `age-keygen` printed as the public key") from None
    return out


def identities(files: list[Path]) -> list[object]:
    """The `AGE-SECRET-KEY-1...` lines of identity files (as `age-keygen -o` writes them; comments skipped)."""
    out = []
    for f in files:
        try:
            lines = [line.strip() for line in f.read_text().splitlines()]
        except OSError as e:
            raise SealError(f"--identity {f}: cannot be read ({e.strerror})") from None
        keys = [line for line in lines if line.startswith("AGE-SECRET-KEY-")]
        if not keys:
            raise SealError(f"--identity {f}: holds no age identity (an AGE-SECRET-KEY-1... line)")
        try:
            out += [x25519.Identity.from_str(k) for k in keys]
        except Exception:
            raise SealError(f"--identity {f}: its AGE-SECRET-KEY line is not a valid identity") from None
    return out


def seal(data: bytes, to: list[str], phrase: str | None) -> bytes:
    if to:
        return bytes(pyrage.encrypt(data, recipients(to)))
    if phrase:
        return bytes(age_passphrase.encrypt(data, phrase))
    raise SealError("say whom the export is for\n  fix: give --recipient age1... (repeatable), or a passphrase "
                    "(BKOPS_PKI_PASSPHRASE, or typed at the prompt)")


def open_sealed(data: bytes, keys: list[Path], phrase: str | None) -> bytes:
    try:
        if keys:
            return bytes(pyrage.decrypt(data, identities(keys)))
        if phrase:
            return bytes(age_passphrase.decrypt(data, phrase))
    except SealError:
        raise
    except Exception:   # pyrage's DecryptError: wrong key or passphrase, or not an age file
        raise SealError("the file cannot be opened with that " + ("identity" if keys else "passphrase") +
                        ": wrong key or passphrase, or not a `bkops pki export` file") from None
    raise SealError("say how to open it\n  fix: give --identity FILE (an age identity), or the passphrase "
                    "(BKOPS_PKI_PASSPHRASE, or typed at the prompt)")
