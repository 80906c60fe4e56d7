"""The certificate revocation list the gateways enforce, made on the operator machine from the revoked
certificates recorded in `pki_dir/revoked.yml` (remove-client, a CI trust's intermediate retired), one CRL per CA
that hosts trust (the CA, during a rotation the next one, and the CI trusts' intermediates: OpenSSL wants a CRL
from the issuer of every certificate it checks).

A CRL is signed (ECDSA, so never twice the same bytes): it is made again only when what it says changes,
and kept in `pki_dir/crl.pem` with its number and inputs in `pki_dir/crl.yml`, so that an unchanged inventory
uploads nothing and reloads no gateway. Its next update is the CA's own end: a gateway never refuses everyone
because a CRL went stale."""
from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.pki import certs, ci_intermediates


@dataclass(frozen=True)
class Crl:
    pem: bytes
    number: int
    made: str        # ISO 8601, when it was signed


def _cas(pki_dir: Path) -> list[certs.CA]:
    """The signers of the CRL: the CA (and the next one), and each CI trust's intermediate (an empty CRL of its
    own: HAProxy wants one for every CA of a chain; the intermediate itself is revoked on the CA's)."""
    cas = [certs.load_ca(pki_dir), certs.load_ca(pki_dir / "next")]
    if cas[0] is not None:
        cas += [i.ca for i in ci_intermediates.kept(pki_dir).values()]
    return [ca for ca in cas if ca is not None]


FORMAT = 2   # how a CRL is made here (2: with the authority key id): a new one is made when it changes


def _inputs(cas: list[certs.CA], revoked: list[dict[str, Any]], last: Sequence[bytes] = ()) -> str:
    what = [f"format {FORMAT}"] + sorted(f"{r['issuer']}:{r['serial']}" for r in revoked) + \
        [hashlib.sha256(pem).hexdigest() for pem in last]
    ids = [ca.cert.fingerprint(hashes.SHA256()).hex() for ca in cas]
    return hashlib.sha256("\n".join(ids + what).encode()).hexdigest()


def current(pki_dir: Path, revoked: list[dict[str, Any]], write: bool = True) -> Crl | None:
    """The CRL for these revocations, made anew only when they (or the CAs) changed; None without a CA. With
    write=False (check mode: nothing changes, not even the PKI) a CRL that would be made anew is a placeholder
    that differs from anything on a host."""
    cas = _cas(pki_dir)
    if not cas:
        return None
    # One maker at a time: the hosts of a run are prepared in parallel threads (and a second operator's run may
    # be under way), and two makers would each sign a CRL of the same number but other bytes (ECDSA), leaving
    # one host with a CRL the operator no longer has (the next run would upload it again). Check mode writes
    # nothing, not even the lock.
    if not write:
        return _current(pki_dir, cas, revoked, write)
    with open(pki_dir / ".crl.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _current(pki_dir, cas, revoked, write)


def _current(pki_dir: Path, cas: list[certs.CA], revoked: list[dict[str, Any]], write: bool) -> Crl:
    state_path, pem_path = pki_dir / "crl.yml", pki_dir / "crl.pem"
    state = yaml.safe_load(state_path.read_text()) if state_path.exists() else {}
    last = ci_intermediates.last_crls(pki_dir)   # (retired intermediates': signed once, kept as they are)
    inputs = _inputs(cas, revoked, last)
    if state.get("inputs") == inputs and pem_path.exists():
        return Crl(pem_path.read_bytes(), int(state["number"]), str(state["made"]))
    number = int(state.get("number", 0)) + 1
    if not write:
        return Crl(f"(CRL number {number} to be signed)\n".encode(), number, "")
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    pem = b"".join(_sign(ca, [r for r in revoked if r["issuer"] == ca.cert.subject.rfc4514_string()], number, now)
                   for ca in cas) + b"".join(last)
    atomic_write(pem_path, pem, 0o644)
    atomic_write(state_path, yaml.safe_dump({"number": number, "made": now.isoformat(), "inputs": inputs}).encode(),
                 0o600)
    return Crl(pem, number, now.isoformat())


def _sign(ca: certs.CA, revoked: list[dict[str, Any]], number: int, now: dt.datetime) -> bytes:
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
         .last_update(now - dt.timedelta(minutes=5))          # (a host's clock a little behind still accepts it)
         .next_update(max(ca.cert.not_valid_after_utc, now + dt.timedelta(days=1)))
         .add_extension(x509.CRLNumber(number), critical=False)
         # (the CA and the next one may share a name: OpenSSL picks each certificate's CRL by its issuer's key)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False))
    for r in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(int(r["serial"], 16))
                                      .revocation_date(dt.datetime.fromisoformat(r["revoked_at"])).build())
    return b.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def issued(pki_dir: Path) -> tuple[int, str] | None:
    """The number and time of the operator's newest CRL, without making one (status only reads)."""
    path = pki_dir / "crl.yml"
    if not path.exists():
        return None
    state = yaml.safe_load(path.read_text()) or {}
    return int(state.get("number", 0)), str(state.get("made", ""))


def made_at(pem: bytes) -> str | None:
    """When the first CRL in a PEM file was signed (ISO 8601), or None."""
    try:
        return x509.load_pem_x509_crl(pem).last_update_utc.isoformat()
    except ValueError:
        return None


def number_of(pem: bytes) -> int | None:
    """The CRL number of the first CRL in a PEM file (what a host serves), or None."""
    try:
        crl = x509.load_pem_x509_crl(pem)
        return int(crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number)
    except (ValueError, x509.ExtensionNotFound):
        return None


def issuer_key_id(pem: bytes) -> str | None:
    """The authority key id (hex) of the first CRL in a PEM file: which CA signed it."""
    try:
        crl = x509.load_pem_x509_crl(pem)
        aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except (ValueError, x509.ExtensionNotFound):
        return None
    return aki.hex() if aki else None


def own_key_ids(pki_dir: Path) -> frozenset[str]:
    """The key ids of every CA this PKI state has had (the CA, the next one, the retired ones): a host whose CRL
    another CA signed belongs to another deployment, and is no judge of this state's age."""
    crts = [pki_dir / "ca.crt", pki_dir / "next" / "ca.crt", *sorted((pki_dir / "retired").glob("*.crt"))]
    ids = set()
    for p in crts:
        if p.exists():
            key = certs.load_cert(p).public_key()
            ids.add(x509.SubjectKeyIdentifier.from_public_key(key).digest.hex())
    return frozenset(ids)


def of_this_pki(issuer: str | None, own: frozenset[str], mine: int | None) -> bool:
    """Whether a host's CRL (its signer's key id) is this PKI's to judge; a CRL of an older format names no
    signer, and is judged as ours when this PKI has a CRL of its own."""
    return issuer in own or (issuer is None and mine is not None)


def standing(host: int | None, mine: int | None, ours: bool = True) -> str:
    """Where a host's CRL stands against the operator's: `behind` (the host lacks revocations: provision it),
    `same`, or `ahead` (this operator's PKI state is older than one that provisioned the host: it would undo
    revocations). A host without a CRL is `behind`; so is a host whose CRL a CA of another PKI signed (`ours`
    false: another deployment's, replaced by this one's as before)."""
    if not ours:
        return "behind"
    if host is None:
        return "behind" if mine is not None else "same"
    if mine is None or host > mine:
        return "ahead"
    return "same" if host == mine else "behind"


def stale_pki(host_name: str, host: int, signed: str | None, mine: int | None) -> str:
    """What a host whose CRL is newer than the operator's says: this PKI state is stale."""
    when = f" of {signed[:10]}" if signed else ""
    have = f"this PKI has {mine}" if mine is not None else "this PKI has none"
    return (f"{host_name} enforces CRL {host}{when}, {have}: this PKI state is older than the one that last "
            f"provisioned it and would undo its revocations; nothing was changed\n  fix: import the newest export "
            f"(`invoke pki-import FILE --replace`), then run it again")
