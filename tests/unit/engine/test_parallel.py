"""Many hosts at once: results in the hosts' order, whatever finishes first; a host that cannot be reached is
reported as such and the others go on."""
from __future__ import annotations

import dataclasses
import time

from unit_helpers import closed_port, ssh_key

from buildkit_ops import inventory as I
from buildkit_ops.engine import parallel
from buildkit_ops.report.results import HostResult


def test_results_come_in_the_hosts_order(inv_path):
    hosts = list(I.load(inv_path).hosts.values())

    def slow_first(h) -> HostResult:
        time.sleep(0.2 if h.name == "build1" else 0)
        return HostResult(h.name)
    assert [r.host for r in parallel.in_parallel(hosts, slow_first)] == ["build1", "build2"]


def test_an_unreachable_host_is_reported_and_its_work_never_runs(inv_path, tmp_path):
    inv = I.load(inv_path)
    key = ssh_key(tmp_path / "id_ecdsa")
    hosts = [dataclasses.replace(h, address="127.0.0.1", ssh_port=closed_port(), connect_timeout=2, ssh_key=key)
             for h in inv.hosts.values()]
    ran = []
    results = parallel.each_host(hosts, lambda h, sess, res: ran.append(h.name))
    assert ran == [] and all(r.unreachable and "unreachable" in (r.error or "") for r in results)
