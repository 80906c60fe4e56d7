"""status of the tenants on a host: each tenant's own buildkitd (state, its cache against its own GC limit, its
builds, its fence), the daemons of tenants no longer placed there, and the judgement: a daemon down or unfenced,
a stale daemon, GC budgets that together exceed the disk."""
from __future__ import annotations

import datetime as dt
from typing import Any

from buildkit_ops.engine.contract import instance_key
from buildkit_ops.flows.status_tree import Cache, HostStatus, Status, TenantStatus
from buildkit_ops.insights import builds as insights
from buildkit_ops.insights import capacity
from buildkit_ops.insights.builds import Build
from buildkit_ops.insights.usage import usage
from buildkit_ops.inventory import BuildHost
from buildkit_ops.inventory.daemons import Daemon
from buildkit_ops.roles.buildkitd.exports import BuildkitdFacts


def du_section(i: int) -> str:
    """The facts section of the i-th daemon's cache usage (the fleet's keeps the name it always had)."""
    return "du" if i == 0 else f"du{i}"


def read(ds: list[Daemon], facts: dict[str, Any], f: dict[str, str], per_daemon: dict[str, list[Build]],
         now: dt.datetime, hs: HostStatus) -> None:
    """Each tenant's daemon on the host (its instance of the buildkitd role: facts["buildkitd[NAME]"]): state,
    its own cache against its own GC limit, its builds; and the daemons of tenants no longer placed here (kept
    until remove-tenant), which the default instance finds."""
    for i, d in enumerate(ds):
        if d.instance is None:
            continue
        u = usage(f.get(du_section(i)))
        disk = capacity.disk(d.buildkit.gc, f.get("disk"))
        bk: BuildkitdFacts = facts[instance_key("buildkitd", d.instance)]
        c = bk.container
        hs.tenants[d.instance] = TenantStatus(
            c.status if c else "absent", c.started if c else None,
            Cache(u.records, u.total, u.reclaimable, disk.disk_size, disk.disk_free, disk.gc_limit),
            insights.summary(per_daemon[d.label], now),
            bk.fence_missing if d.buildkit.step_network == "sandboxed" else [])
    hs.stale_tenants = sorted(set(facts["buildkitd"].tenant_daemons) - {d.instance for d in ds})


def judge(h: BuildHost, hs: HostStatus, st: Status) -> None:
    """A tenant's daemon down or unfenced, daemons of tenants no longer placed here, and GC budgets that together
    exceed the disk (each daemon enforces its own: together they may fill the disk before any GC acts)."""
    fix = f"run `invoke provision --host {h.name}`"
    for name, t in hs.tenants.items():
        if t.state != "running":
            st.warnings.append(f"{h.name}: tenant {name}'s buildkitd is {t.state}: {fix}")
        if t.fence_missing and t.state == "running":
            st.failures.append(f"{h.name}: tenant {name}'s build-step fence is down ({len(t.fence_missing)} rule(s) "
                               f"missing, e.g. {t.fence_missing[0]}); {fix} to put it back (no restart)")
    for name in hs.stale_tenants:
        st.warnings.append(f"{h.name}: the daemon of tenant {name}, no longer placed on this host, is kept with its "
                           f"cache: `bkops remove-tenant {name} --confirm` removes it")
    if not hs.tenants or hs.cache is None or hs.cache.disk_size is None:
        return
    budgets = {"default": hs.cache.gc_limit, **{n: t.cache.gc_limit for n, t in hs.tenants.items()}}
    if any(b is None for b in budgets.values()):
        unbounded = ", ".join(n for n, b in budgets.items() if b is None)
        st.warnings.append(f"{h.name}: the GC of {unbounded} is off: that cache grows until the disk is full, "
                           f"taking the other tenants' room")
        return
    total = sum(b for b in budgets.values() if b is not None)
    if total > hs.cache.disk_size:
        each = ", ".join(f"{n} {b / 1e9:.1f} GB" for n, b in budgets.items() if b is not None)
        st.warnings.append(f"{h.name}: the GC budgets of its daemons ({each}) add up to {total / 1e9:.1f} GB, more "
                           f"than the disk's {hs.cache.disk_size / 1e9:.1f} GB: one tenant can fill the disk before "
                           f"another's GC acts; lower a tenant's buildkit.gc (max_used) or add disk")
