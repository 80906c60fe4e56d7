"""Where a run's time goes. With BKOPS_TRACE=FILE, each SSH connection and each remote command of the run is
appended to FILE as one JSON line (target, what, when it began, seconds, bytes sent, the first two words of
the script): `bench/trace_summary.py FILE` sums them into connections, commands and uploads. Without it, nothing
is kept.
A trace holds no script body and no output: a script may carry key material on its stdin."""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()


@contextmanager
def span(target: str, what: str, label: str = "", sent: int = 0) -> Iterator[None]:
    path = os.environ.get("BKOPS_TRACE")
    if not path:
        yield
        return
    began = time.time()
    try:
        yield
    finally:
        line = json.dumps({"target": target, "what": what, "began": round(began, 4),
                           "seconds": round(time.time() - began, 4), "sent": sent, "label": label[:80]})
        with _lock, open(path, "a") as f:
            f.write(line + "\n")


def first_line(script: str) -> str:
    """What a script is, for the trace: the first two words of its first line that is not a comment or blank
    (enough to tell the facts from a write or a handler; never a value that could be a secret)."""
    for line in script.splitlines():
        s = line.strip()
        if s and not s.startswith("#"):
            return " ".join(s.split()[:2])
    return ""
