"""The CI trusts' intermediate CAs, made and kept on the operator machine (`pki_dir/ci-trusts/TRUST/`), signed by the
operator's CA: one per trust, the same on every build host (a job's certificate is good on each of them). The
hosts' issuers sign with them; the operator's CA key never leaves this machine.

An intermediate is made when its trust appears, and again when the operator's CA changed (rotate-certs --ca) or
the operator asks (rotate-certs --ci-issuer). One whose trust left the inventory, or that was replaced, is
revoked at once: put on the operator CA's CRL (revoked.yml, as a removed client's certificates), so that every
job certificate it signed is refused at the next handshake, and its folder moves to `pki_dir/ci-trusts-retired/`. Each
live intermediate signs its own (empty) CRL too: HAProxy checks a CRL for every CA of a chain."""
from __future__ import annotations

import datetime as dt
import fcntl
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from buildkit_ops.ci_trust import issuing
from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.pki import certs, generation

FOLDER = "ci-trusts"            # (pki_dir/ci/ holds the CI runners' secrets: add-client --connection none)
RETIRED = "ci-trusts-retired"
DAYS = 365   # an intermediate's life (never past the operator CA's)


class NoRoomBelowCA(certs.PKIError):
    """The operator's CA was made before CI trusts (path length 0): it cannot sign an intermediate."""


@dataclass(frozen=True)
class Intermediate:
    trust: str
    ca: certs.CA

    @property
    def serial(self) -> str:
        return format(self.ca.cert.serial_number, "x")


def folder(pki_dir: Path, trust: str) -> Path:
    return pki_dir / FOLDER / trust


def read(pki_dir: Path, trust: str) -> Intermediate | None:
    ca = certs.load_ca(folder(pki_dir, trust))
    return Intermediate(trust, ca) if ca is not None else None


def kept(pki_dir: Path) -> dict[str, Intermediate]:
    """Every intermediate in the PKI now (what the CRL and the hosts' issuers are made of)."""
    out = {}
    for d in sorted((pki_dir / FOLDER).glob("*/ca.crt")):
        got = read(pki_dir, d.parent.name)
        if got is not None:
            out[got.trust] = got
    return out


def room_below(ca: certs.CA) -> bool:
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    return bc.path_length is None or bc.path_length >= 1


def current(pki_dir: Path, trusts: list[str], write: bool = True) -> dict[str, Intermediate]:
    """The intermediates of these trusts, each made when missing or signed by another CA than the operator's now
    (a CA rotation); those of trusts no longer listed, or of another CA, retired: revoked on the CRL. Check mode
    (write=False) changes nothing and returns those kept. One maker at a time (hosts are prepared in threads)."""
    if not write:
        return {t: i for t, i in kept(pki_dir).items() if t in trusts}
    ca = certs.load_ca(pki_dir)
    if ca is None:
        return {}
    (pki_dir / FOLDER).mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(pki_dir / ".ci.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name, inter in kept(pki_dir).items():
            if name not in trusts:
                retire(pki_dir, inter, "trust removed")
            elif not certs.signed_by(inter.ca.cert, ca):
                retire(pki_dir, inter, "another CA")
        out = {}
        for name in trusts:
            got = read(pki_dir, name)
            if got is None:
                if not room_below(ca):
                    raise NoRoomBelowCA(
                        f"{pki_dir / 'ca.crt'}: this CA was made before CI trusts (path length 0) and cannot sign the "
                        f"intermediate of trust {name}; nothing was changed\n  fix: `invoke rotate-certs --ca` "
                        f"(a new CA, without stranding anyone), then provision again")
                got = _make(pki_dir, ca, name)
            out[name] = got
        return out


def renew(pki_dir: Path) -> list[str]:
    """rotate-certs --ci-issuer: every intermediate retired (revoked); the next provision makes new ones."""
    with open(pki_dir / ".ci.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = kept(pki_dir)
        for inter in have.values():
            retire(pki_dir, inter, "replaced")
        return sorted(have)


def _make(pki_dir: Path, ca: certs.CA, name: str) -> Intermediate:
    cert, key = issuing.intermediate(ca.cert, ca.key, name, DAYS)
    d = folder(pki_dir, name)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic_write(d / "ca.key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()), 0o600)
    atomic_write(d / "ca.crt", cert.public_bytes(serialization.Encoding.PEM))
    generation.bump(pki_dir)
    return Intermediate(name, certs.CA(cert, key))


def _last_crl(inter: Intermediate) -> bytes:
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    ca = inter.ca
    return (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(max(issuing.not_after(ca.cert), now + dt.timedelta(days=1)))
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))


def last_crls(pki_dir: Path) -> list[bytes]:
    """The last CRLs of retired intermediates not yet at their end (pki/crl.py adds them to the gateways')."""
    now = dt.datetime.now(dt.timezone.utc)
    out = []
    for p in sorted((pki_dir / RETIRED).glob("*.crl")):
        pem = p.read_bytes()
        crl = x509.load_pem_x509_crl(pem)
        nxt = getattr(crl, "next_update_utc", None) or crl.next_update
        if nxt is not None and nxt.replace(tzinfo=dt.timezone.utc) > now:
            out.append(pem)
    return out


def retire(pki_dir: Path, inter: Intermediate, why: str) -> None:
    """Revoke an intermediate (the operator CA's CRL names it from now on) and keep its certificate aside; its
    key is deleted: nothing signs with it again."""
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    entry = {"name": f"ci-trust {inter.trust} ({why})", "serial": inter.serial,
             "not_after": issuing.not_after(inter.ca.cert).isoformat(),
             "issuer": inter.ca.cert.issuer.rfc4514_string(), "revoked_at": now.isoformat()}
    listed = pki_dir / "revoked.yml"   # (pki/client_records.py's list, from which pki/crl.py makes the CRL)
    entries = (yaml.safe_load(listed.read_text()) or []) if listed.exists() else []
    atomic_write(listed, yaml.safe_dump(entries + [entry], sort_keys=False).encode(), 0o600)
    d = folder(pki_dir, inter.trust)
    dest = pki_dir / RETIRED / f"{inter.trust}-{inter.serial}.crt"
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # its last CRL, signed before its key goes (empty, good until its end): with it the gateway finds the chain
    # of a job's certificate whole and refuses it as revoked (the operator CA's CRL names the intermediate),
    # rather than for a CRL it lacks
    atomic_write(dest.with_suffix(".crl"), _last_crl(inter), 0o644)
    (d / "ca.key").unlink(missing_ok=True)
    (d / "ca.crt").replace(dest)
    shutil.rmtree(d, ignore_errors=True)
    generation.bump(pki_dir)
