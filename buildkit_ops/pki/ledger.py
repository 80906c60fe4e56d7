"""Every client certificate the operator's CAs ever issued, by name (`pki_dir/issued.yml`): a client's,
a CI runner's and the operator's own. A reissue (rotate-certs, a renewal, phase 3 of a CA rotation) overwrites a
client's `client.crt`, but the certificate it replaces stays valid until it expires: only this record lets
`remove-client` revoke every one of them, not just the newest.

A certificate found in a client's folder that the ledger does not know yet (issued before the ledger existed)
is recorded before it is replaced, so a reissue never forgets the certificate it replaces."""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from cryptography import x509

from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.pki import generation

FILE = "issued.yml"


@dataclass(frozen=True)
class Issued:
    name: str          # the certificate's CN: a client, a CI runner or the operator
    serial: str        # lowercase hex, as revoked.yml and the CRL say it
    issuer: str        # RFC 4514, as revoked.yml says it
    not_after: str     # ISO 8601 (UTC)

    @classmethod
    def of(cls, name: str, cert: x509.Certificate) -> Issued:
        return cls(name, format(cert.serial_number, "x"), cert.issuer.rfc4514_string(),
                   cert.not_valid_after_utc.isoformat())

    def expired(self, now: dt.datetime) -> bool:
        return dt.datetime.fromisoformat(self.not_after) <= now


def path(pki_dir: Path) -> Path:
    return pki_dir / FILE


def read(pki_dir: Path) -> list[Issued]:
    p = path(pki_dir)
    rows = (yaml.safe_load(p.read_text()) or []) if p.exists() else []
    return [Issued(str(r["name"]), str(r["serial"]), str(r["issuer"]), str(r["not_after"])) for r in rows]


def record(pki_dir: Path, name: str, *certs: x509.Certificate) -> None:
    """Add these certificates of `name` (those not yet recorded). The caller serialises issuing (certs.py)."""
    known = read(pki_dir)
    seen = {(i.issuer, i.serial) for i in known}
    new = [i for i in (Issued.of(name, c) for c in certs) if (i.issuer, i.serial) not in seen]
    if new:
        atomic_write(path(pki_dir), yaml.safe_dump([asdict(i) for i in known + new], sort_keys=False).encode(),
                     0o600)
        generation.bump(pki_dir)


def unexpired(pki_dir: Path, name: str, now: dt.datetime | None = None) -> list[Issued]:
    """The certificates of `name` that a gateway would still accept unless they are revoked."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return [i for i in read(pki_dir) if i.name == name and not i.expired(now)]
