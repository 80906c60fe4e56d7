"""Rolling restarts: of the hosts one run provisions in parallel, one at a time restarts a service that serves
builds (a handler whose outcome is Outcome.RESTART), from its handler until the host has proved it answers
again. Clients' builders list the other hosts, and a client's failover proxy sends builds to the next host
while one is down: that works only if the next one is not down too.

A host that finished its turn while another waits holds the turn a little longer, so that failover proxies
(health checks 2 s apart, two passes to trust a host again) send builds back to it before the next one goes."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# failover proxies mark a host up after two passed checks 2 s apart (templates/failover-haproxy.cfg.j2)
SETTLE_SECONDS = 5.0


class RestartTurns:
    def __init__(self, settle: float = SETTLE_SECONDS, sleep: Callable[[float], None] = time.sleep):
        self._turn = threading.Lock()
        self._count = threading.Lock()
        self._waiting = 0
        self.settle, self._sleep = settle, sleep

    @contextmanager
    def turn(self) -> Iterator[float]:
        """Hold the fleet's one restart turn; yields how long this host waited for it (seconds)."""
        t0 = time.monotonic()
        with self._count:
            self._waiting += 1
        self._turn.acquire()
        with self._count:
            self._waiting -= 1
        try:
            yield time.monotonic() - t0
        finally:
            with self._count:
                others = self._waiting
            if others:
                self._sleep(self.settle)
            self._turn.release()


# one per process: every host of a run (provision, rotate-certs) takes its turn here
TURNS = RestartTurns()
