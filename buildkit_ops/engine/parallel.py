"""Doing one thing on many build hosts at once: a session each, in parallel, one result each."""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from buildkit_ops.engine.session import SshSession
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.inventory import BuildHost
from buildkit_ops.report.results import HostResult


def each_host(hosts: list[BuildHost], fn: Callable[[BuildHost, SshSession, HostResult], None]) -> list[HostResult]:
    def one(h: BuildHost) -> HostResult:
        res = HostResult(h.name)
        try:
            sess = SshSession.to_host(h)
        except RemoteError as e:
            res.error, res.unreachable = str(e), True
            return res
        try:
            fn(h, sess, res)
        except RemoteError as e:
            res.error = str(e)
        finally:
            res.info["remote_commands"] = sess.commands
            sess.close()
        return res
    return in_parallel(hosts, one)


def in_parallel(hosts: list[BuildHost], fn: Callable[[BuildHost], HostResult]) -> list[HostResult]:
    """fn for each host, at most 8 at once, results in the hosts' order."""
    if len(hosts) == 1:
        return [fn(hosts[0])]
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(hosts)))) as pool:
        return list(pool.map(fn, hosts))
