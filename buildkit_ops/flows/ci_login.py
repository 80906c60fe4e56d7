"""`bkops ci-login`: what the CI snippets do, for other CI systems and for testing. A key made here (never sent),
a CSR, the job's OIDC token traded for a certificate of an hour at most at the first build host that answers,
the three files written 0600 into a folder, and optionally the buildx builder with one node per host."""
from __future__ import annotations

import datetime as dt
import json
import ssl
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from buildkit_ops.ci_trust.issuing import not_after
from buildkit_ops.ci_trust.server import PEM_CHAIN
from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.errors import BkopsError

TIMEOUT = 20


class LoginFailed(BkopsError):
    code = 1


@dataclass(frozen=True)
class Login:
    cert: x509.Certificate
    host: str            # the host whose issuer signed it
    folder: Path


def _url(host: str, port: int) -> str:
    return f"https://[{host}]:{port}/v1/certificate" if ":" in host else f"https://{host}:{port}/v1/certificate"


def exchange(token: str, ca_pem: bytes, url: str, csr_pem: bytes, timeout: float = TIMEOUT) -> bytes:
    """One exchange: the chain (PEM), or LoginFailed with the issuer's own words."""
    context = ssl.create_default_context(cadata=ca_pem.decode("ascii"))
    body = json.dumps({"token": token, "csr": csr_pem.decode("ascii")}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json",
                                             "Accept": PEM_CHAIN})
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as r:   # noqa: S310 (https only)
            return bytes(r.read(65536))
    except urllib.error.HTTPError as e:
        try:
            why = json.loads(e.read(4096)).get("error", e.reason)
        except ValueError:
            why = e.reason
        raise LoginFailed(f"{url} refused the token: {why}", 1) from None


def login(token: str, ca_pem: bytes, hosts: list[str], ci_port: int, folder: Path) -> Login:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ci-job")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    errors = []
    for host in hosts:
        try:
            chain = exchange(token, ca_pem, _url(host, ci_port), csr)
        except LoginFailed:
            raise        # a refusal is final: another host's issuer would say the same
        except (OSError, ssl.SSLError) as e:   # unreachable: the next host
            errors.append(f"{host}: {getattr(e, 'reason', e)}")
            continue
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(folder / "key.pem", key.private_bytes(serialization.Encoding.PEM,
                                                           serialization.PrivateFormat.PKCS8,
                                                           serialization.NoEncryption()), 0o600)
        atomic_write(folder / "cert.pem", chain, 0o600)
        atomic_write(folder / "ca.pem", ca_pem, 0o600)
        return Login(x509.load_pem_x509_certificates(chain)[0], host, folder)
    raise LoginFailed("no build host answered: " + "; ".join(errors), 1)


def builder_commands(name: str, hosts: list[str], port: int, folder: Path) -> list[list[str]]:
    creds = f"cacert={folder}/ca.pem,cert={folder}/cert.pem,key={folder}/key.pem"
    out = [["docker", "buildx", "rm", name]]
    for i, h in enumerate(hosts):
        addr = f"[{h}]" if ":" in h else h
        out.append(["docker", "buildx", "create", "--name", name, *(["--append"] if i else []), "--node",
                    f"{name}-{i}", "--driver", "remote", "--driver-opt", f"{creds},servername={h}",
                    f"tcp://{addr}:{port}"])
    return out + [["docker", "buildx", "use", name]]


def create_builder(name: str, hosts: list[str], port: int, folder: Path) -> None:
    for i, cmd in enumerate(builder_commands(name, hosts, port, folder)):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0 and i > 0:   # (the first removes an older builder of that name, if any)
            raise LoginFailed(f"{' '.join(cmd[:4])}: {r.stderr.strip()[-300:]}", 1)


def summary(res: Login) -> str:
    left = not_after(res.cert) - dt.datetime.now(dt.timezone.utc)
    cn = str(res.cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)
    return (f"certificate {cn} from {res.host}, "
            f"valid {max(0, int(left.total_seconds()) // 60)} min more; files in {res.folder}")
