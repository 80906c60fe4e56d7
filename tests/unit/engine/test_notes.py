"""A remote script tells the operator how a long step is doing with `@@note ` lines on stderr: each is handed on
as soon as its line is whole, and kept out of the stderr a failure would show; a restart that waits for running
builds says so, in the shell the handler runs (tested with a stand-in for docker)."""
from __future__ import annotations

import subprocess

from buildkit_ops.engine.ssh import _pass_notes
from buildkit_ops.roles.buildkitd.drain import drain_script


def test_note_lines_are_handed_on_whole_and_the_rest_kept():
    said: list[str] = []
    err = _pass_notes(bytearray(b"warning: x\n@@note waiting for 2 build"), said.append)
    assert said == [] and err == bytearray(b"warning: x\n@@note waiting for 2 build")
    err = _pass_notes(err + b"(s)\nboom\n", said.append)
    assert said == ["waiting for 2 build(s)"] and err == bytearray(b"warning: x\nboom\n")


def test_a_restart_waiting_for_builds_says_so(tmp_path):
    docker = tmp_path / "docker"   # a stand-in: buildkitd runs, with two builds, then none
    docker.write_text("#!/bin/sh\ncase \"$1\" in inspect) echo true ;; exec) n=$(cat " + str(tmp_path / "n") +
                      " 2>/dev/null || echo 0); echo $((n+1)) > " + str(tmp_path / "n") + "; "
                      "[ $n -lt 2 ] && printf 'running\\nrunning\\n' ;; esac\n")
    docker.chmod(0o755)
    r = subprocess.run(["sh", "-c", drain_script(60, False, "buildkitd")], capture_output=True, text=True, timeout=30,
                       env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert "@@note restart waits for 2 running build(s) to finish (" in r.stderr and "s left of --wait)" in r.stderr
