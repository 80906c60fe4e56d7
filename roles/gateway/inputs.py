"""What the gateway role is planned from (prepared once per host by the role, read by its handlers)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from buildkit_ops.ci_trust.rules import Trust
from buildkit_ops.engine.contract import Context
from buildkit_ops.inventory import BuildHost
from buildkit_ops.inventory.model import Limits
from buildkit_ops.pki.certs import Leaf
from buildkit_ops.roles.gateway.files import Routes


@dataclass(frozen=True)
class GatewayInput:
    """What the gateway is planned from: the TLS files (CA bundle, the host's certificate and key), the CRL, each
    certificate name's role, the image id inside gateway_image_archive (if any), and the operator's
    certificate for the mutual-TLS proof, and where each client's builds go (its tenant's buildkitd)."""
    tls: dict[str, bytes]
    crl: bytes
    crl_number: int | None
    roles: dict[str, str]
    limits: dict[str, Limits]
    image_id: str | None
    operator: Leaf | None = None
    tenants: Routes | None = None
    revoked: tuple[str, ...] = ()      # serials on the CRL (lower-case hex): their open connections are ended
    generation: int = 0                # of the operator's PKI state (written on the host, read by status)
    pin: str | None = None             # the image's digest in images.lock (a tag pulled from a registry)
    lock: Path | None = None           # images.lock, where a tag pulled unpinned gets its pin
    own_cas: frozenset[str] = frozenset()   # key ids of every CA of this PKI state (a host's CRL of ours or not)
    ci_trusts: dict[str, Trust] = field(default_factory=dict)   # CI jobs' rules: their roles, tenants, limits


Ctx = Context[BuildHost, GatewayInput]
