"""What runs print: steps and recaps, typed; text from elsewhere (a host's stderr, a client's image name) never
drives the terminal: escape sequences and bidi controls are shown as escapes, markup as text."""
from __future__ import annotations

from buildkit_ops.engine.contract import Outcome
from buildkit_ops.report.results import HostResult, Reporter, shown


def test_escape_sequences_and_bidi_controls_are_shown_as_escapes():
    assert shown("ok\x1b[2J\x1b]0;owned\x07 \u202egnp.exe\n[red]x") == \
        "ok\\x1b[2J\\x1b]0;owned\\x07 \\u202egnp.exe\n\\[red]x"


def test_a_step_from_a_host_cannot_rewrite_the_terminal(capsys):
    res = HostResult("build1")
    Reporter().step(res, "buildkitd", "service", "failed", "E: \x1b[1A\x1b[2Kall good", Outcome.RESTART)
    err = capsys.readouterr().err
    assert "\x1b[1A" not in err and "\\x1b[1A" in err
    assert res.steps[0].detail == "E: \x1b[1A\x1b[2Kall good"   # (kept as it came, for --json)
    assert res.step_for(Outcome.RESTART) is res.steps[0] and not res.restarted
