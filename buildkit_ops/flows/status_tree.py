"""What `status` finds, as a tree of typed values: the CA, each host (reachable or not), each client, and the
warnings and failures. buildkit_ops/report/status_views.py renders it for people, as JSON and for Prometheus."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from buildkit_ops.insights.builds import Window


@dataclass
class Certificate:
    expires: str                 # ISO 8601
    days_left: int
    issuer: str
    names: list[str]


@dataclass
class ServerCertificate(Certificate):
    names_match: bool = True     # the names are exactly the inventory's for the host
    missing_names: list[str] = field(default_factory=list)
    extra_names: list[str] = field(default_factory=list)


@dataclass
class Buildkitd:
    state: str                   # running, exited, ... or absent
    started: str | None
    version: str | None
    platforms: str
    step_network: str | None     # cni (sandboxed) or host
    config_doctor: list[str] = field(default_factory=list)   # what it found of the running GC and history
    fence_missing: list[str] = field(default_factory=list)   # build-step fence rules not in place (fence.sh check)
    image_digest: str | None = None   # of the image's repository on the host (what images.lock pins a tag to)


@dataclass
class Cache:
    records: int
    total: int                   # bytes
    reclaimable: int
    disk_size: int | None
    disk_free: int | None
    gc_limit: int | None


@dataclass
class Firewall:
    active: bool
    ipv6: bool
    allowed: list[str]           # client addresses our rules let in to the BuildKit port
    missing: list[str]           # the inventory's clients without a rule
    extra: list[str]             # rules for addresses that are no client's
    others_opening_port: list[str]


@dataclass
class Revocations:
    number: int | None           # the CRL number the host's gateway enforces (None: no CRL there)
    signed: str | None           # when that CRL was signed (ISO 8601)
    current: bool                # the operator's newest
    standing: str = "same"       # against the operator's: behind, same, or ahead (this operator's PKI is stale)
    operator: int | None = None  # the number of this operator's newest CRL
    generation: int | None = None           # of the PKI state that last provisioned the host
    operator_generation: int | None = None  # of this operator's PKI state


@dataclass
class TenantStatus:
    """A tenant's own buildkitd on a host."""
    state: str                   # running, exited, ... or absent
    started: str | None
    cache: Cache                 # its own cache volume, against its own GC limit
    builds: dict[str, Window] = field(default_factory=dict)
    fence_missing: list[str] = field(default_factory=list)


@dataclass
class TunnelPeer:
    client: str | None           # the client whose public key it is (None: no client of the inventory)
    public_key: str
    endpoint: str | None         # where its packets come from now (None: no handshake yet)
    handshake_age: int | None    # seconds since its latest handshake (None: never)
    received: int                # bytes
    sent: int


@dataclass
class VpnStatus:
    up: bool
    address: str | None          # the host's in the tunnel
    port: int | None             # its UDP port
    peers: list[TunnelPeer] = field(default_factory=list)
    without_peer: list[str] = field(default_factory=list)   # clients that should be peers and are not


@dataclass
class HostStatus:
    reachable: bool
    home_of: list[str]
    error: str | None = None
    docker: str | None = None
    compose: str | None = None
    buildkitd: Buildkitd | None = None
    cache: Cache | None = None
    builds: dict[str, Window] = field(default_factory=dict)
    server_certificate: ServerCertificate | None = None
    firewall: Firewall | None = None
    crl: Revocations | None = None
    tenants: dict[str, TenantStatus] = field(default_factory=dict)   # the tenants' own daemons (builds: all)
    stale_tenants: list[str] = field(default_factory=list)            # daemons of tenants no longer placed here
    vpn: VpnStatus | None = None                                      # the VPN's tunnel, when there is one
    ci_issuer: str | None = None      # with CI trusts: the CI issuer's unit, "running" or what systemd says

    def as_json(self) -> dict[str, Any]:
        if not self.reachable:
            return {"reachable": False, "error": self.error, "home_of": self.home_of}
        doc = asdict(self)
        del doc["error"]
        return doc


@dataclass
class ClientStatus:
    address: str
    home: str | None
    certificate: Certificate | None
    status: str                  # ok, expired, no certificate, ...


@dataclass
class Status:
    ca: Certificate | None = None
    hosts: dict[str, HostStatus] = field(default_factory=dict)
    clients: dict[str, ClientStatus] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Nothing failed and every host answered (status exits 0)."""
        return not self.failures and all(h.reachable for h in self.hosts.values())

    def as_json(self) -> dict[str, Any]:
        return {"ca": asdict(self.ca) if self.ca else None,
                "hosts": {name: h.as_json() for name, h in self.hosts.items()},
                "clients": {name: asdict(c) for name, c in self.clients.items()},
                "warnings": self.warnings, "failures": self.failures}
