"""builds: the recent builds of build hosts, from BuildKit's history, each with the client that ran it, and the
client's home host when it ran elsewhere (its home was full or down: the failover proxy sent it on)."""
from __future__ import annotations

import datetime as dt
from typing import Any

from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.parallel import each_host
from buildkit_ops.engine.session import SshSession
from buildkit_ops.fleet import placement
from buildkit_ops.insights import builds as insights
from buildkit_ops.insights import daemon_builds
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.daemons import daemons
from buildkit_ops.report.results import HostResult
from buildkit_ops.roles.gateway.exports import as_log_text, build_owners, parse_audit


def recent(inv: Inventory, hosts: list[BuildHost], since: dt.timedelta, tenant: str | None = None,
           running: bool = False) -> dict[str, Any]:
    """Per host: its builds started within `since` (of every daemon, or one tenant's; with `running`, those that
    run now, whenever they started), newest first, each with its tenant, or the error that kept us from reading
    them."""
    now = dt.datetime.now(dt.timezone.utc)
    homes = placement.client_homes(inv)

    def away(client: str | None, host: str) -> str | None:
        """The client's home host when the build ran elsewhere (its home was full, or down), else None."""
        home = homes.get(client or "")
        return home if home is not None and home != host else None

    def work(h: BuildHost, sess: SshSession, res: HostResult) -> None:
        ds = [d for d in daemons(inv, h) if tenant is None or d.label == tenant]
        # (the audit trail of the window alone; a running build may have started long before it)
        solves = insights.solves_snippet() if running else insights.solves_snippet(int(since.total_seconds()) + 60)
        rc, out, err = sess.run("\n".join(daemon_builds.snippets(ds)) + "\n" + solves + "\n")
        got = sections(out)
        log = as_log_text(got.get("solves", ""))
        per_daemon = daemon_builds.read(ds, got, parse_audit(log), build_owners(log))
        rows = [(b, label) for label, builds in per_daemon.items() for b in builds
                if (b.completed is None if running else b.created >= now - since)]
        res.info["builds"] = [{**b.row(), "tenant": label, "away_from": away(b.client, h.name)}
                              for b, label in sorted(rows, key=lambda r: r[0].created, reverse=True)]

    return {r.host: ({"error": r.error} if r.error else {"builds": r.info["builds"]}) for r in each_host(hosts, work)}
