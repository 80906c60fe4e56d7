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
    """One daemon's names on its host, fixed when it is made: fleet() gives the fleet's (the names buildkit-ops
    always used), tenant_daemon() a tenant's (each name its own)."""
    tenant: str | None                   # None: the fleet's own
    buildkit: BuildKit                   # its settings on this host
    container: str
    volume: str                          # its cache
    project: str                         # its Compose project: each daemon's `up --remove-orphans` leaves the others be
    files_dir: str                       # its files on the host
    socket_dir: str                      # its socket's folder on the host
    gateway_socket: str                  # its socket as the gateway's container sees it
    bridge: str                          # its build steps' bridge
    subnet: str                          # and their addresses
    slot: int = 0                        # a tenant's subnet and bridge number (inventory: Tenant.slot)

    @property
    def instance(self) -> str | None:
        """Its name as an instance of the roles applied once per daemon (None: the fleet's, the default)."""
        return self.tenant

    @property
    def label(self) -> str:
        return self.tenant or DEFAULT_TENANT

    @property
    def ctl(self) -> str:
        """buildctl against it, from the host."""
        return f"docker exec {self.container} buildctl --addr {SOCK}"


def fleet(host: BuildHost) -> Daemon:
    return Daemon(None, host.buildkit, "buildkitd", "buildkit-cache", "buildkit-ops", host.buildkit.data_dir,
                  SOCKET_DIR, "/run/buildkit/buildkitd.sock", "buildkit0", "10.10.0.0/16")


def tenant_daemon(host: BuildHost, name: str, buildkit: BuildKit | None = None, slot: int = 0) -> Daemon:
    """A tenant's daemon on a host (buildkit: its settings there; none for what is left of a tenant no longer
    placed there, found and removed by these names)."""
    return Daemon(name, buildkit or host.buildkit, f"buildkitd-{name}", f"buildkit-cache-{name}",
                  f"buildkit-ops-tenant-{name}", f"{host.buildkit.data_dir}/tenants/{name}",
                  f"{SOCKET_DIR}/tenants/{name}", f"/run/buildkit/tenants/{name}/buildkitd.sock", f"buildkit-t{slot}",
                  f"10.11.{slot}.0/24", slot)


def tenants(inv: Inventory, host: BuildHost) -> list[Daemon]:
    """The tenants' daemons on the host, by tenant name."""
    return [tenant_daemon(host, t.name, t.buildkit[host.name], t.slot) for t in inv.tenants_on(host.name)]


def daemons(inv: Inventory, host: BuildHost) -> list[Daemon]:
    """Every daemon of the host: the fleet's first."""
    return [fleet(host), *tenants(inv, host)]


def of_tenant(inv: Inventory, host: BuildHost, tenant: str | None) -> Daemon | None:
    """The daemon of a tenant (None or "default": the fleet's) on this host; None when the tenant is not on it."""
    if tenant in (None, DEFAULT_TENANT):
        return fleet(host)
    return next((d for d in tenants(inv, host) if d.tenant == tenant), None)
