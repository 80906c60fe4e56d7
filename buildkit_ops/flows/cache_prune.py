"""cache-prune: `buildctl prune` on each host by size, age and filters, with the usage before and after; of the
fleet's buildkitd, or of one tenant's (`--tenant`): never of another tenant's cache."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from buildkit_ops.engine import host_lock
from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.parallel import each_host
from buildkit_ops.engine.session import SshSession
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.errors import FlowError
from buildkit_ops.insights.daemon_queries import disk_usage
from buildkit_ops.insights.usage import usage
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory import values as types
from buildkit_ops.inventory.daemons import Daemon, fleet, of_tenant
from buildkit_ops.inventory.values import parse_duration, parse_size
from buildkit_ops.report.results import HostResult, Reporter
from buildkit_ops.report.tables import human_size as human


@dataclass
class Criteria:
    """What to prune: at most keep_storage bytes, records used within keep_duration seconds, filters, all."""
    keep_storage: int | None = None
    keep_duration: int | None = None
    filters: list[str] = field(default_factory=list)
    all: bool = False

    @classmethod
    def parse(cls, keep_storage: str | None, keep_duration: str | None, filters: list[str], all_: bool,
              check: bool) -> Criteria:
        """From the command line, checked like inventory values; FlowError (exit 2) says what is wrong."""
        try:
            ks = parse_size(keep_storage) if keep_storage is not None else None
            kd = parse_duration(keep_duration) if keep_duration is not None else None
        except ValueError:
            raise FlowError("--keep-storage takes a size such as 5GB or 512MB, --keep-duration a duration such as "
                            "48h or 7d", 2) from None
        for f in filters:
            try:
                types.prune_filter(f)
            except types.BadValue as e:
                raise FlowError(f"--filter: {e.problem}\n  fix: {e.fix}", 2) from None
        if not check and ks is None and kd is None and not filters and not all_:
            raise FlowError("say what to prune: --keep-storage, --keep-duration, --filter and/or --all (or --check "
                            "to look)", 2)
        return cls(ks, kd, filters, all_)


def prune_command(what: Criteria, ctl: str) -> str:
    args = ["prune", "--format", "'{{json .}}'"]
    if what.keep_storage is not None:
        args += ["--keep-storage", f"{what.keep_storage / 1e6:.6f}"]   # buildctl counts MB of 10^6 bytes
    if what.keep_duration is not None:
        args += ["--keep-duration", f"{what.keep_duration}s"]
    for f in what.filters:
        args += ["--filter", quote(f)]
    if what.all:
        args.append("--all")
    return f"{ctl} {' '.join(args)}"


def daemon_for(inv: Inventory, h: BuildHost, tenant: str | None) -> Daemon:
    """The daemon whose cache is pruned on a host: the fleet's, or the tenant's (an error where it has none)."""
    d = of_tenant(inv, h, tenant) if tenant else fleet(h)
    if d is None:
        raise FlowError(f"tenant {tenant} has no buildkitd on {h.name} (its hosts: "
                        f"{', '.join(inv.tenant(str(tenant)).hosts)}): leave --host out, or name one of them", 2)
    return d


def cache_prune(inv: Inventory, hosts: list[BuildHost], what: Criteria, check: bool,
                rep: Reporter, tenant: str | None = None) -> list[HostResult]:
    daemons = {h.name: daemon_for(inv, h, tenant) for h in hosts}   # (all checked before any host is touched)

    def work(h: BuildHost, sess: SshSession, res: HostResult) -> None:
        ctl = daemons[h.name].ctl
        du = disk_usage(ctl)
        if check:
            rc, out, err = sess.run(f"echo @@before; {du}")
        else:
            prune = prune_command(what, ctl)
            lock = host_lock.acquire(sess, "cache-prune")
            try:
                rc, out, err = sess.run(f"set -e\necho @@before; {du}\necho @@pruned; {prune}\necho @@after; {du}\n")
            finally:
                lock.release()
        if rc != 0:
            raise RemoteError(f"buildctl failed on {h.name}: {(err or out).strip()[-300:]}")
        got = sections(out)
        before = usage(got.get("before"))
        res.info["before"] = asdict(before)
        if check:
            rep.step(res, "cache", "usage", "ok", f"{human(before.total)} in {before.records} records, "
                                                   f"{human(before.reclaimable)} reclaimable (nothing pruned)")
            return
        after = usage(got.get("after"))
        pruned = [json.loads(l) for l in (got.get("pruned") or "").splitlines() if l.strip().startswith("{")]
        freed = sum(p.get("size", p.get("Size", 0)) for p in pruned)
        res.info.update(after=asdict(after), freed=freed, pruned_records=len(pruned))
        rep.step(res, "cache", "prune", "changed" if pruned else "ok",
                 f"{human(before.total)} -> {human(after.total)}, freed {human(freed)} "
                 f"({len(pruned)} records)")
    results = each_host(hosts, work)
    for r in results:
        if r.error:
            rep.fail(r, r.error, r.unreachable)
    return results
