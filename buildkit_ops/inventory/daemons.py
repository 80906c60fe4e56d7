"""The buildkitd daemons of a build host, a domain type of the inventory: the fleet's own, which serves every
client of no tenant (its names are the ones buildkit-ops always used), and one per tenant placed on the host, each
with a container, cache volume, Compose project, files folder, unix socket, step bridge and subnet of its own
(docs/tenants.md). The roles that run once per daemon (buildkitd, prune) take one of these as their instance; the
fleet's daemon is their default instance (no name)."""
from __future__ import annotations

from dataclasses import dataclass

from buildkit_ops.inventory.model import DEFAULT_TENANT, BuildHost, BuildKit, Inventory

# The host folder of the daemons' unix sockets, mounted at /run/buildkit in the gateway's container; the fleet's
# daemon mounts it at /run/buildkit too, a tenant's daemon its own subfolder.
SOCKET_DIR = "/run/buildkit-ops"
# Where each daemon's socket is inside its own container (buildkitd.toml's [grpc] address).
SOCK = "unix:///run/buildkit/buildkitd.sock"
# Build steps' bridges: the fleet's 10.10.0.0/16, a tenant's a /24 of 10.11.0.0/16; every fence drops what a
# step sends to STEPS (another daemon's steps included).
STEPS = "10.10.0.0/15"


@dataclass(frozen=True)
class Daemon:
    tenant: str | None                   # None: the fleet's own
    buildkit: BuildKit                   # its settings on this host
    slot: int = 0                        # a tenant's subnet and bridge number (inventory: Tenant.slot)

    @property
    def instance(self) -> str | None:
        """Its name as an instance of the roles applied once per daemon (None: the fleet's, the default)."""
        return self.tenant

    @property
    def label(self) -> str:
        return self.tenant or DEFAULT_TENANT

    @property
    def container(self) -> str:
        return f"buildkitd-{self.tenant}" if self.tenant else "buildkitd"

    @property
    def volume(self) -> str:
        return f"buildkit-cache-{self.tenant}" if self.tenant else "buildkit-cache"

    @property
    def project(self) -> str:
        """Its Compose project: each daemon's `up --remove-orphans` leaves the others alone."""
        return f"buildkit-ops-tenant-{self.tenant}" if self.tenant else "buildkit-ops"

    @property
    def files_dir(self) -> str:
        d = self.buildkit.data_dir
        return f"{d}/tenants/{self.tenant}" if self.tenant else d

    @property
    def socket_dir(self) -> str:
        """Its socket's folder on the host."""
        return f"{SOCKET_DIR}/tenants/{self.tenant}" if self.tenant else SOCKET_DIR

    @property
    def gateway_socket(self) -> str:
        """Its socket as the gateway's container sees it."""
        return f"/run/buildkit/tenants/{self.tenant}/buildkitd.sock" if self.tenant else "/run/buildkit/buildkitd.sock"

    @property
    def bridge(self) -> str:
        return f"buildkit-t{self.slot}" if self.tenant else "buildkit0"

    @property
    def subnet(self) -> str:
        return f"10.11.{self.slot}.0/24" if self.tenant else "10.10.0.0/16"

    @property
    def ctl(self) -> str:
        """buildctl against it, from the host."""
        return f"docker exec {self.container} buildctl --addr {SOCK}"


def fleet(host: BuildHost) -> Daemon:
    return Daemon(None, host.buildkit)


def tenants(inv: Inventory, host: BuildHost) -> list[Daemon]:
    """The tenants' daemons on the host, by tenant name."""
    return [Daemon(t.name, t.buildkit[host.name], t.slot) for t in inv.tenants_on(host.name)]


def daemons(inv: Inventory, host: BuildHost) -> list[Daemon]:
    """Every daemon of the host: the fleet's first."""
    return [fleet(host), *tenants(inv, host)]


def named(host: BuildHost, tenant: str) -> Daemon:
    """A tenant's daemon's names on a host, whatever the inventory says of it now (a tenant no longer placed there:
    what is left of it is found, and removed, by these names)."""
    return Daemon(tenant, host.buildkit)


def of_tenant(inv: Inventory, host: BuildHost, tenant: str | None) -> Daemon | None:
    """The daemon of a tenant (None or "default": the fleet's) on this host; None when the tenant is not on it."""
    if tenant in (None, DEFAULT_TENANT):
        return fleet(host)
    return next((d for d in tenants(inv, host) if d.tenant == tenant), None)
