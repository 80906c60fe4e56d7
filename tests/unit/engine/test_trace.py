"""The trace of where a run's time goes: a JSON line per remote command with BKOPS_TRACE, none without it, and
never a script's body or output (a script may carry key material)."""
from __future__ import annotations

import json

from buildkit_ops.engine import trace
from buildkit_ops.engine.session import LocalSession

SCRIPT = "# the facts\nprintf '%s' secret-key-material-abc\necho done\n"


def test_each_command_is_one_line_of_its_target_what_and_time_and_nothing_of_its_body(tmp_path, monkeypatch):
    path = tmp_path / "trace.jsonl"
    monkeypatch.setenv("BKOPS_TRACE", str(path))
    rc, out, _ = LocalSession().run(SCRIPT)
    assert rc == 0 and "secret-key-material-abc" in out     # (the control: the script ran and printed it)
    [line] = [json.loads(x) for x in path.read_text().splitlines()]
    assert (line["target"], line["what"], line["label"]) == ("local", "command", "printf '%s'")
    assert line["seconds"] >= 0 and "secret-key-material" not in path.read_text()


def test_without_the_variable_nothing_is_kept(tmp_path, monkeypatch):
    monkeypatch.delenv("BKOPS_TRACE", raising=False)
    monkeypatch.chdir(tmp_path)
    LocalSession().run("echo hi\n")
    assert list(tmp_path.iterdir()) == []
    assert trace.first_line("\n  # only a comment\n\n") == ""
