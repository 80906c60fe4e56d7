"""builds: the recent builds of build hosts, from BuildKit's history, each with the client that ran it."""
from __future__ import annotations

import datetime as dt
from typing import Any

from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.parallel import each_host
from buildkit_ops.engine.session import SshSession
from buildkit_ops.flows.cache_prune import CTL
from buildkit_ops.insights import builds as insights
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.report.results import HostResult
from buildkit_ops.roles.gateway.exports import parse_audit


def recent(inv: Inventory, hosts: list[BuildHost], since: dt.timedelta) -> dict[str, Any]:
    """Per host: its builds started within `since`, newest first, or the error that kept us from reading them."""
    now = dt.datetime.now(dt.timezone.utc)

    def work(h: BuildHost, sess: SshSession, res: HostResult) -> None:
        rc, out, err = sess.run(insights.history_snippet(CTL) + "\n" + insights.solves_snippet() + "\n")
        got = sections(out)
        builds = insights.parse(got.get("history", ""))
        insights.attribute(builds, parse_audit(got.get("solves", "")))
        res.info["builds"] = [b.row() for b in reversed(builds) if b.created >= now - since]

    return {r.host: ({"error": r.error} if r.error else {"builds": r.info["builds"]}) for r in each_host(hosts, work)}
