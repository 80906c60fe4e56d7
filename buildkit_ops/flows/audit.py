"""audit: the gateways' audit trail, one line per gRPC call (who, what, how long, bytes each way, result), read
from each build host's gateway log (Docker's json-file: root-only, rotated), newest last: only the window asked
is read, from the log's end back."""
from __future__ import annotations

import datetime as dt
from typing import Any

from buildkit_ops.engine.parallel import each_host
from buildkit_ops.engine.session import SshSession
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.insights.daemon_builds import tenant_of
from buildkit_ops.inventory import BuildHost
from buildkit_ops.report.results import HostResult
from buildkit_ops.roles.gateway.exports import as_log_text, log_window, parse_audit


def trail(hosts: list[BuildHost], since: dt.timedelta, client: str | None = None,
          tenant: str | None = None) -> dict[str, Any]:
    """Per host: the calls that ended within `since` (of `client` only, of `tenant`'s daemon only, if given), each
    with its tenant, or the error that kept us from reading them."""
    seconds = max(1, int(since.total_seconds()))

    def work(h: BuildHost, sess: SshSession, res: HostResult) -> None:
        rc, out, err = sess.run(log_window(seconds))
        if rc != 0:
            raise RemoteError(f"cannot read the gateway's log: {(err or out).strip()[-200:]}")
        calls = [(a, tenant_of(a)) for a in parse_audit(as_log_text(out))]
        res.info["calls"] = [{**a.as_json(), "tenant": t} for a, t in calls
                             if (client is None or a.client == client) and (tenant is None or t == tenant)]

    return {r.host: ({"error": r.error} if r.error else {"calls": r.info["calls"]}) for r in each_host(hosts, work)}
