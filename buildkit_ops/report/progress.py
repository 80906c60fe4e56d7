"""Progress of long transfers (an image archive uploaded to a host), on stderr beside the steps: on a terminal,
Rich's progress bars (bytes, rate, time left; one per host, gone once done); elsewhere (a CI log, a pipe) a
plain line at each quarter. Nothing when the reporter is quiet."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

Tick = Callable[[int], None]   # bytes sent so far


class Transfers:
    def __init__(self, console: Console):
        self.console = console
        self._lock = threading.Lock()
        self._bars: Progress | None = None
        self._running = 0

    def start(self, host: str, what: str, total: int) -> Tick:
        if self.console.is_terminal:
            return self._bar(host, what, total)
        return self._lines(host, what, total)

    def _bar(self, host: str, what: str, total: int) -> Tick:
        with self._lock:
            if self._bars is None:
                self._bars = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                                      TransferSpeedColumn(), TimeRemainingColumn(), console=self.console,
                                      transient=True)
                self._bars.start()
            self._running += 1
            bars = self._bars
            task: TaskID = bars.add_task(f"{escape(host):10} upload {escape(what)}", total=total)

        def tick(sent: int) -> None:
            bars.update(task, completed=sent)
            if sent >= total:
                self._done(task)
        return tick

    def _done(self, task: TaskID) -> None:
        with self._lock:
            if self._bars is None:
                return
            self._bars.remove_task(task)
            self._running -= 1
            if self._running == 0:
                self._bars.stop()
                self._bars = None

    def _lines(self, host: str, what: str, total: int) -> Tick:
        t0 = time.monotonic()
        said = [0]

        def tick(sent: int) -> None:
            quarter = 4 * sent // max(total, 1)
            if quarter <= said[0]:
                return
            said[0] = quarter
            elapsed = max(time.monotonic() - t0, 1e-3)
            rate = sent / elapsed
            left = (total - sent) / rate if rate else 0
            self.console.print(f"{escape(host):10} upload       {escape(what)}: {25 * quarter}% of "
                               f"{total / 1e6:.1f} MB, {rate / 1e6:.1f} MB/s" +
                               (f", {left:.0f} s left" if sent < total else f", {elapsed:.1f} s"),
                               highlight=False)
        return tick
