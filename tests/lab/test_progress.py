"""Long work shows its progress in a terminal: a provision of a brand-new build2, run under a pseudo-terminal as
an operator's shell would, draws the image upload's progress bar (bytes and rate) while it uploads; with
`--json` there is no progress, and the output is pure JSON."""
from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys

import pytest
from helpers import INV, ROOT

pytestmark = pytest.mark.lab


def run_in_a_terminal(args: list[str]) -> tuple[int, str, str]:
    """The command with stderr on a pseudo-terminal (what the operator sees) and stdout on a pipe."""
    leader, follower = pty.openpty()
    p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=follower, stdin=subprocess.DEVNULL,
                         env=dict(os.environ, COLUMNS="120", TERM="xterm-256color"))
    os.close(follower)
    screen = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                break
            if not chunk:
                break
            screen += chunk
        elif p.poll() is not None:
            break
    out = p.stdout.read().decode() if p.stdout else ""
    os.close(leader)
    return p.wait(), out, screen.decode(errors="replace")


def test_an_upload_shows_its_progress_in_a_terminal_and_json_stays_pure(lab):
    provision = [sys.executable, "-m", "invoke", "provision", "--host", "build2", "-i", str(INV)]
    lab.reset("build2")   # (it lacks the BuildKit image: provision uploads it)
    rc, out, screen = run_in_a_terminal(provision)
    assert rc == 0, screen[-3000:]
    assert "upload buildkit.tar" in screen and "━" in screen and "MB" in screen, screen[-3000:]
    lab.reset("build2")
    rc, out, screen = run_in_a_terminal([*provision, "--json"])
    assert rc == 0, screen[-3000:]
    assert "━" not in screen and "upload buildkit.tar" not in screen
    doc = json.loads(out)                     # nothing but the JSON document on stdout
    assert doc["hosts"]["build2"]["changed"] > 5
