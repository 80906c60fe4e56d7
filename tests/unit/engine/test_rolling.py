"""Rolling restarts: of the hosts of one run, one at a time holds the restart turn; a host that ends its turn
while another waits holds it a moment longer (for the clients' failover proxies), and one alone never waits."""
from __future__ import annotations

import threading
import time

from buildkit_ops.engine.rolling import RestartTurns


def test_hosts_take_turns_one_at_a_time_with_a_settle_before_each_next_one():
    events: list[str] = []
    lock = threading.Lock()

    def note(what: str) -> None:
        with lock:
            events.append(what)

    turns = RestartTurns(settle=5, sleep=lambda s: note(f"settle {s:g}"))
    inside, go_on = threading.Event(), threading.Event()

    def host(name: str) -> None:
        with turns.turn():
            note(f"{name} in")
            if name == "build1":   # build1 holds the turn until the others wait for it
                inside.set()
                go_on.wait(5)
            note(f"{name} out")

    threads = [threading.Thread(target=host, args=(n,)) for n in ("build1", "build2", "build3")]
    threads[0].start()
    inside.wait(5)
    for t in threads[1:]:
        t.start()
    deadline = time.monotonic() + 5
    while turns._waiting < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    go_on.set()
    for t in threads:
        t.join(5)
    assert sum(e.endswith(" in") for e in events) == 3, events
    for i, e in enumerate(events):   # never two hosts inside at once: each "in" is followed by its own "out"
        if e.endswith(" in"):
            assert events[i + 1] == e.replace(" in", " out"), events
    # a settle after build1 and after the second host (the third was waiting); none after the last
    assert events.count("settle 5") == 2 and events[-1].endswith(" out"), events


def test_a_host_alone_neither_waits_nor_settles():
    slept: list[float] = []
    turns = RestartTurns(settle=5, sleep=slept.append)
    with turns.turn():
        pass
    assert slept == []
