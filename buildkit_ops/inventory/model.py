"""The inventory as the rest of buildkit-ops reads it: typed values, checked at load (loader.py, checker.py).

Code reads `host.buildkit.port` and `host.buildkit.gc.policies[0].keep_duration`, never string keys; sizes are
bytes and durations seconds. Every value here passed its kind's grammar (values.py). Defaults are written once,
in schema.py: the sections mirroring a table of it have none here (a None in a rule, a registry or a schedule
means "not set", which leaves the key out of the config)."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:   # (ci_trust.rules uses this module's Limits)
    from buildkit_ops.ci_trust.rules import Trust

from buildkit_ops.errors import BkopsError


class InventoryError(BkopsError):
    """A problem in the inventory: where, what, and how to fix it."""
    code = 2

    def __init__(self, file: str, path: str, problem: str, fix: str):
        # a key can be hostile too (a host named "b\nx"): it is shown escaped, on one line
        path = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)
        self.file, self.path, self.problem, self.fix = file, path, problem, fix
        super().__init__(f"{file}: {path}: {problem}\n  fix: {fix}")


# A name in every server certificate, so that a client's failover proxy can hand its connection to any host of
# the fleet and the builder still checks the certificate (`servername`). `.invalid` never resolves (RFC 6761).
FLEET_NAME = "fleet.buildkit-ops.invalid"


@dataclass
class GCPolicy:
    """One rule of BuildKit's garbage collector; unset fields are left out of the config."""
    all: bool | None = None
    keep_duration: int | None = None     # seconds
    max_used: int | str | None = None    # bytes or "N%" of the disk: the size the rule prunes down to
    reserved: int | str | None = None    # (v0.17+) never freed
    min_free: int | str | None = None    # (v0.17+) free disk space to keep
    filters: list[str] | None = None


@dataclass
class GC:
    enabled: bool
    keep_storage: int | str              # bytes or "N%" of the disk
    policies: list[GCPolicy]
    reserved: int | str | None           # v0.17+ worker-wide reservedSpace / maxUsedSpace / minFreeSpace
    max_used: int | str | None
    min_free: int | str | None


@dataclass
class Registry:
    ca: str | None = None                # a CA file on the operator machine, uploaded to the host
    http: bool | None = None
    insecure: bool | None = None
    mirrors: list[str] | None = None


@dataclass
class PruneSchedule:
    calendar: str                        # a systemd OnCalendar expression
    keep_storage: int | None = None      # bytes
    keep_duration: int | None = None     # seconds
    filters: list[str] | None = None
    all: bool | None = None


@dataclass
class BuildKit:
    image: str
    image_archive: str | None
    version: str
    port: int
    gateway_image: str
    gateway_image_archive: str | None
    gateway_idle_timeout: int             # seconds
    ci_port: int                          # the CI exchange's (ci_trust)
    max_parallelism: int
    privileges: str
    data_dir: str
    debug_address: str | None
    step_network: str
    gc: GC
    registries: dict[str, Registry]
    prune_schedule: PruneSchedule | None
    history_max_age: int                  # seconds
    history_max_entries: int


@dataclass
class BuildHost:
    name: str
    address: str
    names: list[str]
    client_address: str
    ssh_user: str
    ssh_port: int
    ssh_key: str | None
    known_hosts: str
    connect_timeout: int
    buildkit: BuildKit
    weight: int                          # its share of the clients (rendezvous placement)
    platforms: list[str] | None          # the platforms it builds for (None: what its buildkitd reports)
    emulate: list[str]                   # platforms emulated with qemu-user-static
    allow_outdated_buildkit: bool        # serve several clients below the security floor (security_floor.py)
    private_address: str | None          # private mode: the one address the BuildKit port listens on
    vpn_address: str | None              # its address in the VPN (Inventory.vpn), when there is one

    @property
    def listen(self) -> str:
        """Where the gateway listens: the private address, or every IPv4 address."""
        return self.private_address or "0.0.0.0"

    @property
    def sans(self) -> list[str]:
        out: list[str] = []
        for n in [self.address, self.client_address, *([self.private_address] if self.private_address else []),
                  *self.names, self.name, FLEET_NAME]:
            if n not in out:
                out.append(n)
        return out


@dataclass(frozen=True)
class Limits:
    builds: int = 0                      # builds at once on one host; more wait at the gateway (0: no limit)
    queue: int = 0                       # builds that may wait; the next is refused at once (0: no limit)


@dataclass
class Client:
    name: str
    address: str
    connection: str
    ssh_address: str
    ssh_user: str
    ssh_port: int
    ssh_key: str | None
    known_hosts: str
    connect_timeout: int
    builder: str
    default_builder: bool
    home: str | None                     # a build host pinned as its home (None: placement decides)
    failover: str                        # `proxy`: builds go to the next host while the home is down
    failover_port: int                   # the proxy's first port on the client's loopback
    failover_image: str
    failover_image_archive: str | None
    placement: str                       # with the proxy: home, spill (default) or least-busy
    role: str                            # developer or admin: the gRPC methods the gateway lets it call
    allow_wide_network: bool             # its address may be a network wider than values.WIDEST
    limits: Limits                       # what the gateway lets it run at once
    tenant: str | None                   # the tenant whose buildkitd serves it (None: the fleet's own)
    vpn_address: str | None              # its address in the VPN (Inventory.vpn), when there is one


# The fleet's own buildkitd, which serves the clients of no tenant: how outputs name it.
DEFAULT_TENANT = "default"
# The operator's own certificate's name (pki/server.py): role operator, the fleet's daemon. No client may take it.
OPERATOR_NAME = "buildkit-ops-operator"


@dataclass
class Tenant:
    """A team with a buildkitd of its own on each of its hosts: its own cache, history and GC budget; the gateway
    sends each of its clients there (docs/tenants.md)."""
    name: str
    hosts: list[str]                     # the build hosts it runs on (the inventory's order)
    buildkit: dict[str, BuildKit]        # host name -> its BuildKit settings there (the host's, with the tenant's)
    slot: int                            # its build steps' subnet and bridge (roles/buildkitd/daemons.py)
    slot_recorded: bool = True           # written in the inventory (step_slot); else chosen now, to be recorded
    placement: str | None = None         # its clients' placement where a client does not set its own


@dataclass(frozen=True)
class Vpn:
    """A WireGuard tunnel between the build hosts and the clients: the BuildKit port opens only inside it."""
    kind: str
    subnet: str
    port: int                            # UDP, on the build hosts
    allow_from: list[str]                # who may reach that port (empty: anywhere)


@dataclass
class Inventory:
    file: Path
    hosts: dict[str, BuildHost]
    clients: dict[str, Client]
    groups: dict[str, list[str]]
    pki_dir: Path
    cert_days: int
    cert_renew_days: int
    ca_days: int
    tenants: dict[str, Tenant] = field(default_factory=dict)
    vpn: Vpn | None = None
    vpn_unrecorded: dict[str, str] = field(default_factory=dict)   # machine -> tunnel address chosen, to write
    ci_trust: dict[str, Trust] = field(default_factory=dict)       # CI jobs' OIDC trusts by name (docs/ci.md)

    def hosts_for(self, client: Client) -> list[BuildHost]:
        """The build hosts that may serve the client: its tenant's, or every one."""
        if client.tenant is None:
            return list(self.hosts.values())
        return [self.hosts[n] for n in self.tenants[client.tenant].hosts]

    def tenants_on(self, host: str) -> list[Tenant]:
        """The tenants with a buildkitd on this host, by name."""
        return [t for _n, t in sorted(self.tenants.items()) if host in t.hosts]

    def tenant(self, name: str) -> Tenant:
        return _known(self.file, self.tenants, name, f"all.vars.tenants.{name}", "tenant",
                      "known tenants: {known}; add it under all.vars.tenants", "none")

    def select(self, spec: str | None) -> list[BuildHost]:
        """'build1,build2', a group name, 'all' or None (every build host)."""
        if not spec or spec == "all":
            return list(self.hosts.values())
        out: list[BuildHost] = []
        for part in [p.strip() for p in spec.split(",") if p.strip()]:
            if part in self.hosts:
                names = [part]
            elif part in self.groups:
                names = self.groups[part]
            else:
                raise InventoryError(str(self.file), f"--host {part}", f"no build host or group named {part!r}",
                                     "use one of: " + ", ".join(sorted([*self.hosts, *self.groups])))
            out += [self.hosts[n] for n in names if self.hosts[n] not in out]
        return out

    def check_files(self, hosts: Sequence[BuildHost] = (), clients: Sequence[Client] = ()) -> None:
        """Before connecting anywhere: every local file these hosts and clients need exists and is readable.
        (Not at load: the lab's files appear only with `invoke lab.up`, and list-clients needs none.)"""
        f = str(self.file)
        if self.pki_dir.exists() and not self.pki_dir.is_dir():
            raise InventoryError(f, "all.vars.pki_dir", f"{self.pki_dir} is not a directory",
                                 "point pki_dir at a directory (it is created if missing)")
        for h in hosts:
            hp = f"all.children.buildhosts.hosts.{h.name}"
            _need_file(f, f"{hp}.ssh_key", h.ssh_key, "the SSH private key for this host")
            _need_file(f, f"{hp}.buildkit.image_archive", h.buildkit.image_archive,
                       "a `docker save` tarball of buildkit.image (the lab: `invoke lab.up` builds it)")
            for reg, conf in h.buildkit.registries.items():
                _need_file(f, f"{hp}.buildkit.registries.{reg}.ca", conf.ca, "the registry's CA certificate")
        for name, t in sorted(self.ci_trust.items()) if hosts else ():
            _need_file(f, f"all.vars.ci_trust.{name}.ca_file", t.ca_file, "the CA certificate of the issuer's HTTPS")
        for c in clients:
            if c.connection == "ssh":
                _need_file(f, f"all.children.clients.hosts.{c.name}.ssh_key", c.ssh_key,
                           "the SSH private key for this client")
            if c.failover == "proxy":
                _need_file(f, f"all.children.clients.hosts.{c.name}.failover_image_archive",
                           c.failover_image_archive, "a `docker save` tarball of failover_image (the lab: "
                                                     "`invoke lab.up` builds it)")

    def client(self, name: str) -> Client:
        return _known(self.file, self.clients, name, f"all.children.clients.hosts.{name}", "client",
                      "known clients: {known}; or give --address to add a new one", "none yet")


K = TypeVar("K")


def _known(file: Path, items: dict[str, K], name: str, key: str, noun: str, fix: str, none: str) -> K:
    """items[name], or a clear error that lists the known names."""
    if name not in items:
        known = ", ".join(sorted(items)) or none
        raise InventoryError(str(file), key, f"no {noun} named {name!r}", fix.format(known=known))
    return items[name]


def _need_file(file: str, key: str, path: str | None, what: str) -> None:
    if path is None:
        return
    p = Path(path)
    if not p.is_file():
        raise InventoryError(file, key, f"{p} {'is not a file' if p.exists() else 'does not exist'}",
                             f"put {what} there, or change or remove the key")
    if not os.access(p, os.R_OK):
        raise InventoryError(file, key, f"{p} is not readable", f"make it readable by {os.environ.get('USER', 'you')}")
