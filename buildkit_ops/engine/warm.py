"""Connections opened ahead. A flow that knows which machines it reaches next opens their SSH connections while it
does other work (add-client checks the client machine meanwhile; remove-client closes the firewalls), and the next
session to that machine takes the open one; a session done with a machine it will reach again gives its
connection back. At 50 ms of latency a connection costs 0.35 s: add-client made three, one after the other.

A connection opened ahead is checked like any other (the same connect(): host key against known_hosts); one that
failed to open says so when it is taken, as connecting then would have; those never taken are closed when the
flow ends (close_all)."""
from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from fabric import Connection

_lock = threading.Lock()
_ahead: dict[tuple[str, str, int, str], Future[Connection]] = {}
_pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="bkops-warm")


def key(address: str, user: str, port: int, known_hosts: str) -> tuple[str, str, int, str]:
    return (address, user, port, known_hosts)


def open_ahead(k: tuple[str, str, int, str], opener: Callable[[], Connection]) -> None:
    """Start opening a connection (unless one is open or opening already)."""
    with _lock:
        if k not in _ahead:
            _ahead[k] = _pool.submit(opener)


def give_back(k: tuple[str, str, int, str], conn: Connection) -> None:
    """A connection the next session to that machine takes (this one is done with it)."""
    done: Future[Connection] = Future()
    done.set_result(conn)
    with _lock:
        old = _ahead.pop(k, None)
        _ahead[k] = done
    if old is not None:
        _close(old)


def take(k: tuple[str, str, int, str]) -> Connection | None:
    """The connection opened ahead to that machine (waiting for it to open; its error if it could not), or None."""
    with _lock:
        f = _ahead.pop(k, None)
    if f is None:
        return None
    conn = f.result()
    transport = conn.client.get_transport() if conn.client else None
    return conn if transport is not None and transport.is_active() else None


def close_all() -> None:
    with _lock:
        left = list(_ahead.values())
        _ahead.clear()
    for f in left:
        _close(f)


def _close(f: Future[Connection]) -> None:
    try:
        f.result().close()
    except Exception:   # (a connection that never opened has nothing to close)
        pass
