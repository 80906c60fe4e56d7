"""Absent is a state: the daemons of tenants no longer placed on a host. Their cache is a team's work, so an edit
of the inventory alone keeps them (said so, with the command that removes them); once the operator confirmed the
removal (remove-tenant --confirm, Options.remove), the plan drains and removes the daemon, its cache volume, its
files and its socket folder (its prune timer is the prune role's to remove)."""
from __future__ import annotations

from buildkit_ops.engine.contract import Step
from buildkit_ops.engine.shell import command, quote
from buildkit_ops.inventory import BuildHost
from buildkit_ops.inventory.daemons import Daemon, tenant_daemon
from buildkit_ops.roles.buildkitd.drain import drain_script


def remove_script(d: Daemon, wait: int, force: bool) -> str:
    """Drain (its running builds finish, at most `wait` s), then remove the container, cache volume, files and
    socket folder. Builds still running after the wait keep everything (unless forced)."""
    drain = drain_script(wait, force, d.container).strip()
    busy = quote(f"builds of tenant {d.tenant} still run after {wait}s: nothing of it was removed; re-run when "
                 f"they are done, or with --force")
    return (f"( {drain}\n) >/dev/null || {{ echo {busy}; exit 1; }}\n"
            f"{command('docker', 'rm', '-f', d.container)} >/dev/null 2>&1 || true\n"
            f"if docker volume inspect {quote(d.volume)} >/dev/null 2>&1; then "
            f"{command('docker', 'volume', 'rm', d.volume)} >/dev/null; fi\n"
            f"{command('rm', '-rf', d.files_dir, d.socket_dir)}\n")


def steps(host: BuildHost, found: list[str], wanted: set[str], remove: frozenset[str], wait: int,
          force: bool) -> list[Step]:
    """For each tenant daemon found on the host (a container or a cache volume) that the inventory no longer
    places there: kept, or removed when confirmed."""
    out = []
    for name in sorted(set(found) - wanted):
        if name in remove:
            out.append(Step("buildkitd", f"{name}: daemon", True, "drained; container, cache volume, files and socket "
                            "removed", script=remove_script(tenant_daemon(host, name), wait, force), instance=name))
        else:
            # (never removed by a provision: an inventory edit does not take a team's cache away)
            out.append(Step("buildkitd", f"{name}: daemon", False, f"not a tenant of this host in the inventory: kept "
                            f"with its cache; `bkops remove-tenant {name} --confirm` removes it", instance=name))
    return out
