"""remove-tenant: a tenant's daemons and caches taken off its hosts, only when asked twice.

Without --confirm it only looks: which hosts run the tenant's buildkitd, and how much cache would go. With it:
the gateways stop routing to the tenant (a provision of the inventory without it), each host's daemon is drained
(its running builds finish, at most --wait), then its container, cache volume, files and prune timer are
removed, and last the tenant leaves the inventory. A tenant that still has clients is refused: move them first
(`add-client NAME --tenant OTHER`), so that nobody's builder is left pointing at nothing."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from buildkit_ops import inventory as inv_mod
from buildkit_ops.engine import host_lock
from buildkit_ops.engine.contract import Options
from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.parallel import each_host
from buildkit_ops.engine.session import SshSession
from buildkit_ops.engine.shell import command, quote
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.errors import FlowError
from buildkit_ops.flows.provision import provision
from buildkit_ops.insights.usage import usage
from buildkit_ops.inventory import BuildHost, Inventory, values
from buildkit_ops.inventory import edit as inventory_edit
from buildkit_ops.report.results import HostResult, Reporter
from buildkit_ops.report.tables import human_size
from buildkit_ops.roles.buildkitd.exports import SOCKET_DIR, Daemon, drain_script

ProvisionHosts = Callable[[Inventory, Options], list[HostResult]]


def _daemon(host: BuildHost, name: str) -> Daemon:
    """The tenant's daemon's names on a host (whatever the inventory says of it now)."""
    return Daemon(name, host.buildkit)


def look_script(d: Daemon) -> str:
    c = quote(d.container)
    return (f"echo @@state; docker inspect -f '{{{{.State.Status}}}}' {c} 2>/dev/null || echo absent\n"
            f"echo @@volume; docker volume inspect -f '{{{{.Name}}}}' {quote(d.volume)} 2>/dev/null || true\n"
            f"echo @@du; {d.ctl} du --format '{{{{json .}}}}' 2>/dev/null || true\n")


def remove_script(d: Daemon, wait: int, force: bool) -> str:
    """Drain, then remove the container, its cache volume, files, socket folder and prune timer."""
    unit = f"buildkit-ops-prune-{d.tenant}"
    units = [f"/etc/systemd/system/{unit}.{kind}" for kind in ("timer", "service")]
    return (drain_script(wait, force, d.container)
            + f"{command('docker', 'rm', '-f', d.container)} >/dev/null 2>&1 || true\n"
            + f"if docker volume inspect {quote(d.volume)} >/dev/null 2>&1; then "
              f"{command('docker', 'volume', 'rm', d.volume)} >/dev/null; fi\n"
            + f"{command('rm', '-rf', d.files_dir, f'{SOCKET_DIR}/tenants/{d.tenant}')}\n"
            + f"systemctl disable --now {quote(unit + '.timer')} >/dev/null 2>&1 || true\n"
            + f"{command('rm', '-f', *units)}\nsystemctl daemon-reload\n")


def quiet_provision(inv: Inventory, options: Options) -> list[HostResult]:
    return provision(inv, inv.select(None), options, Reporter(quiet=True))


def remove_tenant(inventory: Path, name: str, confirm: bool, rep: Reporter, wait: int = 300, force: bool = False,
                  provision_hosts: ProvisionHosts = quiet_provision) -> list[HostResult]:
    try:
        values.tenant_name(name)
    except values.BadValue as e:
        raise FlowError(f"{name!r}: {e.problem}\n  fix: {e.fix}", 2) from None
    inv = inv_mod.load(inventory)
    users = sorted(c.name for c in inv.clients.values() if c.tenant == name)
    if users:
        raise FlowError(f"tenant {name} still has clients: {', '.join(users)}; move each first (`bkops add-client "
                        f"NAME --tenant OTHER`, or remove it), then re-run; nothing was changed", 2)
    hosts = inv.select(None)
    inv.check_files(hosts)
    after = inventory_edit.remove_tenant(inventory, name, write=False) if name in inv.tenants else inv

    def look(h: BuildHost, sess: SshSession, res: HostResult) -> None:
        rc, out, err = sess.run(look_script(_daemon(h, name)))
        got = sections(out)
        res.info.update(state=got.get("state", "absent").strip() or "absent",
                        volume=bool(got.get("volume", "").strip()), cache=usage(got.get("du")).total)

    found = each_host(hosts, look)
    for r in found:
        if r.error:
            rep.fail(r, r.error, r.unreachable)
        elif r.info["state"] == "absent" and not r.info["volume"]:
            rep.step(r, "tenants", f"{name}: buildkitd", "ok", "none on this host")
        else:
            rep.step(r, "tenants", f"{name}: buildkitd", "would change" if not confirm else "ok",
                     f"{r.info['state']}, cache volume {'present' if r.info['volume'] else 'absent'} "
                     f"({human_size(r.info['cache'])} of cache)")
    if any(r.error for r in found):
        raise FlowError("not every build host could be read; nothing was changed: fix that host and re-run")
    if not confirm:
        rep.text(f"nothing was removed: `bkops remove-tenant {name} --confirm` drains and removes the daemons and "
                 f"caches above" + (", and the tenant from the inventory" if name in inv.tenants else ""))
        return found

    routed = provision_hosts(after, Options())   # the gateways stop routing to it first
    bad = [r.host for r in routed if r.failed]
    if bad:
        raise FlowError(f"{', '.join(bad)} could not be provisioned without tenant {name}; its daemons were kept: "
                        f"fix that host and re-run")

    def remove(h: BuildHost, sess: SshSession, res: HostResult) -> None:
        lock = host_lock.acquire(sess, "remove-tenant")
        try:
            rc, out, err = sess.run(remove_script(_daemon(h, name), wait, force))
        finally:
            lock.release()
        got = sections(out)
        if rc == 75 and got.get("busy"):
            raise RemoteError(f"{got['busy'].strip()} build(s) of tenant {name} still running after {wait}s: kept; "
                              f"re-run when they are done, or with --force")
        if rc != 0:
            raise RemoteError(f"removing tenant {name}'s daemon failed: {(err or out).strip()[-300:]}")
        rep.step(res, "tenants", f"{name}: buildkitd", "changed", "drained; container, cache volume, files and "
                                                                  "prune timer removed")

    hosts_with = [h for h, r in zip(hosts, found, strict=True) if r.info["state"] != "absent" or r.info["volume"]]
    results = each_host(hosts_with, remove)
    for r in results:
        if r.error:
            rep.fail(r, r.error, r.unreachable)
    if any(r.error for r in results):
        raise FlowError(f"tenant {name} was not removed from every host; it stays in the inventory: re-run "
                        f"`bkops remove-tenant {name} --confirm`")
    if name in inv.tenants:
        inventory_edit.remove_tenant(inventory, name)
        res = HostResult("inventory")
        rep.step(res, "inventory", f"tenant {name}", "changed", f"removed from {inventory}")
        results.append(res)
    return results
