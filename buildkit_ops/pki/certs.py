"""The PKI, on the operator machine: one CA, a server cert per build host, a
client cert per client. ECDSA P-256 everywhere. The CA key is written with mode
0600 in the inventory's pki_dir and is never uploaded anywhere.

Layout of pki_dir:
    ca.crt  ca.key                    the CA
    hosts/NAME/server.crt, .key       serverAuth only, SANs = host's addresses and names
    clients/NAME/client.crt, .key     clientAuth only, CN = NAME
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.errors import BkopsError
from buildkit_ops.pki import generation, ledger

UTC = dt.timezone.utc
T = TypeVar("T")


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _now() -> dt.datetime:
    return dt.datetime.now(UTC).replace(microsecond=0)


@dataclass
class CA:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


class PKIError(BkopsError):
    """A CA, certificate or key file on the operator machine that cannot be used: which file, and what to do."""


def read_pem(path: Path, what: str, load: Callable[[bytes], T]) -> T:
    """load(bytes) of a PEM file, or a PKIError naming the file (never its content)."""
    try:
        return load(path.read_bytes())
    except PermissionError:
        raise PKIError(f"{path}: not readable ({what}); fix its owner or mode") from None
    except OSError as e:
        raise PKIError(f"{path}: cannot be read ({e.strerror}); it holds {what}") from None
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise PKIError(f"{path}: not a valid PEM {what} (corrupt or truncated?). Restore it from your backup; "
                       f"if it is lost, move the PKI directory aside and run `invoke provision` to start a new one "
                       f"(then `invoke add-client` for every client)") from None


def load_cert(path: Path) -> x509.Certificate:
    return read_pem(path, "certificate", x509.load_pem_x509_certificate)


class CAKeyMissing(PKIError):
    """The CA's certificate without its key: never a reason to make a new CA (every host would get a server
    certificate no client trusts). An operator may keep the key offline and bring it only to sign."""


def load_ca_cert(pki_dir: Path) -> x509.Certificate | None:
    """The CA's certificate alone, for what only checks (status, list-clients, doctor): works without the key."""
    crt = pki_dir / "ca.crt"
    return load_cert(crt) if crt.exists() else None


def load_ca(pki_dir: Path) -> CA | None:
    """The CA to sign with; None where there is none yet. Half a CA stops whoever wants to sign."""
    crt, key = pki_dir / "ca.crt", pki_dir / "ca.key"
    if crt.exists() and not key.exists():
        raise CAKeyMissing(f"{key}: the CA's key is missing (its certificate is there); this would sign "
                           f"certificates or a CRL, so it stops: nothing was changed\n  fix: put the key back (from "
                           f"where you keep it offline, or your backup), or `invoke pki-import` your export")
    if key.exists() and not crt.exists():
        raise PKIError(f"{crt}: the CA's certificate is missing (its key is there): nothing was changed\n  fix: "
                       f"restore ca.crt from your backup, or `invoke pki-import` your export")
    if not crt.exists():
        return None
    return CA(load_cert(crt), read_pem(key, "private key", _ec_key))


def _ec_key(pem: bytes) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(pem, None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("not an EC key")  # every key here is ECDSA P-256
    return key


def create_ca(pki_dir: Path, days: int, name: str = "buildkit-ops CA") -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "buildkit-ops"),
                         x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            # path length 1: one CA may stand below it, a CI trust's intermediate (pki/ci_intermediates.py), which
            # is itself path length 0, client-auth only and name-constrained to the CI namespace. A CA made before
            # (path length 0) carries none: a trust asks for `rotate-certs --ca` first.
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    atomic_write(pki_dir / "ca.key", _key_pem(key), 0o600)
    atomic_write(pki_dir / "ca.crt", cert.public_bytes(serialization.Encoding.PEM))
    return CA(cert, key)


def ensure_ca(pki_dir: Path, days: int) -> tuple[CA, bool]:
    ca = load_ca(pki_dir)
    if ca is not None:
        if (pki_dir / "ca.key").stat().st_mode & 0o077:
            os.chmod(pki_dir / "ca.key", 0o600)
        return ca, False
    pki_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    ca = create_ca(pki_dir, days)
    generation.bump(pki_dir)
    return ca, True


def _san_entries(names: list[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return out


def issue(ca: CA, cn: str, days: int, *, server_names: list[str] | None = None) -> tuple[bytes, bytes]:
    """A leaf certificate: server (serverAuth, SANs) when server_names is given, else client (clientAuth)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    not_after = min(now + dt.timedelta(days=days), ca.cert.not_valid_after_utc)
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "buildkit-ops"),
                                  x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
         .issuer_name(ca.cert.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                      crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if server_names is not None:
        b = (b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
             .add_extension(x509.SubjectAlternativeName(_san_entries(server_names)), critical=False))
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = b.sign(ca.key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def cert_sans(cert: x509.Certificate) -> list[str]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(v) for v in ext.get_values_for_type(x509.IPAddress)] + ext.get_values_for_type(x509.DNSName)


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except Exception:
        return False


def signed_by(cert: x509.Certificate, ca: CA) -> bool:
    return issued_by(cert, ca.cert)


def days_left(cert: x509.Certificate, now: dt.datetime | None = None) -> int:
    """Whole days until the certificate expires (negative once it has)."""
    return (cert.not_valid_after_utc - (now or _now())).days


def trust_bundle(pki_dir: Path) -> bytes:
    """The CA certificates to trust: the CA, and during a CA rotation the next one too. Servers trust it for
    client certificates; clients for the servers'."""
    out = (pki_dir / "ca.crt").read_bytes()
    nxt = pki_dir / "next" / "ca.crt"
    if nxt.exists():
        out += nxt.read_bytes()
    return out


def reissue_reason(crt_path: Path, key_path: Path, ca: CA, renew_days: int,
                   server_names: list[str] | None = None) -> str | None:
    """Why the leaf at crt_path must be (re)issued, or None if it is fine."""
    if not crt_path.exists() or not key_path.exists():
        return "missing"
    cert = load_cert(crt_path)
    key = read_pem(key_path, "private key", _ec_key)
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        return "its key does not match it"
    if not signed_by(cert, ca):
        return "signed by another CA"
    left = cert.not_valid_after_utc - _now()
    if left < dt.timedelta(days=renew_days):
        return f"expires in {max(left.days, 0)} days"
    if server_names is not None and sorted(cert_sans(cert)) != sorted(server_names):
        return f"names changed: {sorted(cert_sans(cert))} -> {sorted(server_names)}"
    return None


@dataclass
class Leaf:
    crt: Path
    key: Path
    ledger: Path | None = None   # the pki_dir whose ledger records every certificate issued here (clients)


def server_paths(pki_dir: Path, host: str) -> Leaf:
    d = pki_dir / "hosts" / host
    return Leaf(d / "server.crt", d / "server.key")


def client_paths(pki_dir: Path, client: str) -> Leaf:
    d = pki_dir / "clients" / client
    return Leaf(d / "client.crt", d / "client.key", pki_dir)


_issuing = threading.Lock()


def ensure_leaf(leaf: Leaf, ca: CA, cn: str, days: int, renew_days: int,
                server_names: list[str] | None = None, force: bool = False) -> str | None:
    """Issue the leaf if needed (or if forced); returns the reason it was issued, or None. One at a time: a
    certificate and its key are two files, and hosts provisioned in parallel may want the same leaf."""
    with _issuing:
        return _ensure_leaf(leaf, ca, cn, days, renew_days, server_names, force)


def _ensure_leaf(leaf: Leaf, ca: CA, cn: str, days: int, renew_days: int, server_names: list[str] | None,
                 force: bool) -> str | None:
    # pki_dir, clients/ or hosts/, the leaf's own folder: only the operator may go in (the CA key is there too)
    for d in (leaf.key.parent.parent.parent, leaf.key.parent.parent, leaf.key.parent):
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(d, 0o700)
    if leaf.key.exists() and stat.S_IMODE(leaf.key.stat().st_mode) != 0o600:
        os.chmod(leaf.key, 0o600)   # a key found readable by others is tightened, whatever else happens
    reason = reissue_reason(leaf.crt, leaf.key, ca, renew_days, server_names) or ("rotation" if force else None)
    if reason:
        crt, key = issue(ca, cn, days, server_names=server_names)
        if leaf.ledger is not None:   # recorded before it is written: no certificate is ever out of the ledger
            replaced = [load_cert(leaf.crt)] if leaf.crt.exists() else []
            ledger.record(leaf.ledger, cn, *replaced, x509.load_pem_x509_certificate(crt))
        atomic_write(leaf.key, key, 0o600)
        atomic_write(leaf.crt, crt)
    return reason


def expiry(crt_path: Path) -> dt.datetime:
    return load_cert(crt_path).not_valid_after_utc


# ---------------------------------------------------------------- CA rotation state
# During `rotate-certs --ca` the next CA lives in pki_dir/next/ and rotation.yml records the
# phase reached and which CA signs new server and client certificates.

def rotation_state(pki_dir: Path) -> dict[str, Any]:
    p = pki_dir / "rotation.yml"
    return (yaml.safe_load(p.read_text()) or {}) if p.exists() else {}


def save_rotation_state(pki_dir: Path, state: dict[str, Any] | None) -> None:
    p = pki_dir / "rotation.yml"
    if state is None:
        p.unlink(missing_ok=True)
    else:
        atomic_write(p, yaml.safe_dump(state, sort_keys=False).encode(), 0o600)


def signing_ca(pki_dir: Path, kind: str) -> CA | None:
    """The CA that signs new `server` or `client` certificates now (the next one during a rotation)."""
    if rotation_state(pki_dir).get("signing", {}).get(kind) == "next":
        nxt = load_ca(pki_dir / "next")
        if nxt is not None:
            return nxt
    return load_ca(pki_dir)
