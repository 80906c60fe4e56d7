"""Progress of an upload: outside a terminal, a plain line at each quarter (rate, time left, then the time it
took); on a terminal, Rich's bar, gone once done. The session tells the bytes handed over, chunk by chunk."""
from __future__ import annotations

import io

from rich.console import Console

from buildkit_ops.engine.session import counted
from buildkit_ops.report.progress import Transfers


def test_a_log_gets_a_line_at_each_quarter():
    out = io.StringIO()
    tick = Transfers(Console(file=out, width=200)).start("build1", "buildkit.tar", 4_000_000)
    for sent in range(0, 4_000_001, 500_000):
        tick(sent)
    lines = out.getvalue().splitlines()
    assert [line.split(": ")[1].split("%")[0] for line in lines] == ["25", "50", "75", "100"]
    assert lines[0].startswith("build1     upload       buildkit.tar: 25% of 4.0 MB, ") and "s left" in lines[0]
    assert "s left" not in lines[-1]


def test_a_terminal_gets_a_bar_that_goes_when_done():
    out = io.StringIO()
    transfers = Transfers(Console(file=out, force_terminal=True, width=120))
    tick = transfers.start("build1", "buildkit.tar", 1000)
    tick(500)
    assert transfers._bars is not None
    tick(1000)
    assert transfers._bars is None


def test_the_session_tells_the_bytes_handed_over():
    seen = []
    assert b"".join(counted([b"ab", b"cde"], seen.append)) == b"abcde"
    assert seen == [2, 5]
