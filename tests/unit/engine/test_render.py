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


def test_a_character_outside_the_bmp_is_one_valid_toml_escape():
    import tomllib
    value = "pin \U0001f4cc and \x7f"
    assert tomllib.loads("k = " + render.json_string(value))["k"] == value
    assert "\\ud83d" not in render.json_string(value)


def test_a_systemd_value_that_ends_in_a_backslash_is_refused():
    import pytest
    with pytest.raises(render.RenderError, match="would join the next line"):
        render.systemd_value("daily\\")


def test_a_systemd_word_is_one_assignment_whatever_it_holds(tmp_path):
    from unit_helpers import systemd_words

    env = render.environment("systemd", tmp_path)
    words = systemd_words(env.from_string("{{ v|systemd_word }}").render(v="BKOPS_PORT=1 LD_PRELOAD=/tmp/x.so"))
    assert words == ["BKOPS_PORT=1 LD_PRELOAD=/tmp/x.so"]   # one word: no second assignment
