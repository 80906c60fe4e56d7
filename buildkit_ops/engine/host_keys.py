"""A machine's SSH host keys, scanned (OpenSSH's ssh-keyscan) to fill a new deployment's known_hosts, with the
SHA256 fingerprints a person compares with the provider's console (`ssh-keygen -lf` prints the same). Nothing
is trusted silently: the caller pins the fingerprints or asks."""
from __future__ import annotations

import base64
import hashlib
import subprocess
from dataclasses import dataclass

from buildkit_ops.errors import BkopsError

TYPES = "ed25519,ecdsa,rsa"


class ScanError(BkopsError):
    pass


@dataclass(frozen=True)
class HostKey:
    host: str          # as known_hosts names it: address, or [address]:port
    kind: str          # ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa
    blob: str          # base64

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256(base64.b64decode(self.blob)).digest()
        return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")

    def line(self) -> str:
        return f"{self.host} {self.kind} {self.blob}"


def known_hosts_name(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


def parse(text: str, host: str) -> list[HostKey]:
    keys = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or line.startswith("#"):
            continue
        try:
            base64.b64decode(parts[2], validate=True)
        except ValueError:
            continue
        keys.append(HostKey(host, parts[1], parts[2]))
    return keys


def scan(address: str, port: int = 22, timeout: int = 10) -> list[HostKey]:
    try:
        r = subprocess.run(["ssh-keyscan", "-T", str(timeout), "-p", str(port), "-t", TYPES, "--", address],
                           capture_output=True, text=True, timeout=timeout + 10)
    except FileNotFoundError:
        raise ScanError("ssh-keyscan is not installed here: install OpenSSH's client (Debian: openssh-client)") \
            from None
    except subprocess.TimeoutExpired:
        raise ScanError(f"{address}:{port}: no SSH answer within {timeout} s") from None
    keys = parse(r.stdout, known_hosts_name(address, port))
    if not keys:
        raise ScanError(f"{address}:{port}: no SSH host key could be read (is SSH listening there?)")
    return keys
