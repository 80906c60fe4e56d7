"""remove-tenant: a tenant's daemons and caches taken off its hosts, only when asked twice.

Without --confirm it only looks: which hosts run the tenant's buildkitd, and how much cache would go. With it:
check, edit the inventory, run the roles. The tenant leaves the inventory; then a run limited to what it touches
(the gateways' routes, the tenant's own instances of buildkitd and prune) with its removal confirmed: each
gateway stops routing to it, its daemon is drained (its running builds finish, at most --wait) and removed with
its cache volume, files and socket, and its prune timer goes. Every other drift is left for provision (pending).
A tenant that still has clients is refused: move them first (`add-client NAME --tenant OTHER`), so that nobody's
builder is left pointing at nothing."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from buildkit_ops import inventory as inv_mod
from buildkit_ops.engine.contract import Options, instance_key
from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.parallel import each_host
from buildkit_ops.engine.session import SshSession
from buildkit_ops.engine.shell import quote
from buildkit_ops.errors import FlowError
from buildkit_ops.flows.provision import provision, report_narrow
from buildkit_ops.insights.daemon_queries import disk_usage
from buildkit_ops.insights.usage import usage
from buildkit_ops.inventory import BuildHost, Inventory, values
from buildkit_ops.inventory import edit as inventory_edit
from buildkit_ops.inventory.daemons import Daemon, tenant_daemon
from buildkit_ops.report.results import HostResult, Reporter
from buildkit_ops.report.tables import human_size

ProvisionHosts = Callable[[Inventory, Options], list[HostResult]]


def look_script(d: Daemon) -> str:
    c = quote(d.container)
    return (f"echo @@state; docker inspect -f '{{{{.State.Status}}}}' {c} 2>/dev/null || echo absent\n"
            f"echo @@volume; docker volume inspect -f '{{{{.Name}}}}' {quote(d.volume)} 2>/dev/null || true\n"
            f"echo @@du; {disk_usage(d.ctl)} 2>/dev/null || true\n")


def quiet_provision(inv: Inventory, options: Options) -> list[HostResult]:
    return provision(inv, inv.select(None), options, Reporter(quiet=True))


def removal(name: str, wait: int, force: bool) -> Options:
    """The run that removes a tenant: its removal confirmed, and only what it touches applied."""
    return Options(wait=wait, force=force, remove=frozenset({name}),
                   roles=frozenset({"gateway", instance_key("buildkitd", name), instance_key("prune", name)}))


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
        rc, out, err = sess.run(look_script(tenant_daemon(h, name)))
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

    shown = []
    if name in inv.tenants:
        inventory_edit.remove_tenant(inventory, name)
        shown.append(HostResult("inventory"))
        rep.step(shown[-1], "inventory", f"tenant {name}", "changed", f"removed from {inventory}")
    results = provision_hosts(after, removal(name, wait, force))
    shown += report_narrow(rep, results, lambda st: st.instance == name)
    if any(r.error for r in results):
        raise FlowError(f"tenant {name} was not removed from every host (see above); it is out of the inventory: "
                        f"fix that host and re-run `bkops remove-tenant {name} --confirm`")
    return shown
