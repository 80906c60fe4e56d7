"""Rendering that cannot be broken out of, and the one shell-quoting helper."""
from __future__ import annotations

import subprocess

from unit_helpers import HOSTILE

from buildkit_ops.engine import render


def test_shell_quote_survives_everything():
    for evil in HOSTILE:
        out = subprocess.run(["sh", "-c", "printf %s " + render.quote(evil.replace("\x00", ""))],
                             capture_output=True, text=True).stdout
        assert out == evil.replace("\x00", "")
