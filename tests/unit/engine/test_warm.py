"""Connections opened ahead: the next session to a machine takes the one opened (or given back) for it, an
opening that failed fails the taking as connecting would have, and those never taken are closed."""
from __future__ import annotations

import pytest

from buildkit_ops.engine import warm
from buildkit_ops.engine.ssh import RemoteError


class FakeConnection:
    """Just what warm looks at: an SSH transport that is active until closed."""
    def __init__(self):
        self.closed = False
        self.client = self

    def get_transport(self):
        return self

    def is_active(self):
        return not self.closed

    def close(self):
        self.closed = True


K = warm.key("10.0.0.11", "root", 22, "known_hosts")


def test_the_next_session_takes_the_connection_opened_ahead_once():
    conn = FakeConnection()
    warm.open_ahead(K, lambda: conn)
    assert warm.take(K) is conn
    assert warm.take(K) is None      # (taken: the next session connects itself)


def test_a_connection_given_back_is_taken_by_the_next_session_unless_it_died():
    conn = FakeConnection()
    warm.give_back(K, conn)
    assert warm.take(K) is conn
    warm.give_back(K, conn)
    conn.close()
    assert warm.take(K) is None


def test_an_opening_that_failed_fails_the_taking_as_connecting_would():
    def refused():
        raise RemoteError("build1: unreachable")
    warm.open_ahead(K, refused)
    with pytest.raises(RemoteError, match="unreachable"):
        warm.take(K)


def test_connections_never_taken_are_closed_when_the_flow_ends():
    conn = FakeConnection()
    warm.open_ahead(K, lambda: conn)
    warm.close_all()
    assert conn.closed and warm.take(K) is None
