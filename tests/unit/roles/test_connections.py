"""The connections role: the connection log of versions before the gateway is taken away where it is found
(service stopped and disabled, its files removed), and nothing is done where it is not."""
from __future__ import annotations

from unit_helpers import scripts

from buildkit_ops.roles import connections


def test_a_host_without_the_old_connection_log_has_nothing_to_do():
    steps = connections.plan(connections.parse({"conn_leftovers": ""}))
    assert [s.changed for s in steps] == [False]


def test_the_old_connection_log_is_stopped_and_removed():
    found = "/etc/systemd/system/buildkit-ops-connections.service\n/var/lib/buildkit-ops/connections.log\n"
    steps = connections.plan(connections.parse({"conn_leftovers": found}))
    assert [s.changed for s in steps] == [True]
    script = scripts(steps)
    assert script.index("systemctl disable --now buildkit-ops-connections.service") < script.index("rm -f")
    for path in connections.LEFTOVERS:
        assert path in script
