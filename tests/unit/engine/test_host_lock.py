"""The host lock's script, run for real with flock on this machine (a temporary lock file): the first run holds
the lock as long as its stdin is open; a second waits, then stops naming the holder; once the first lets go, the
second takes it and says whose lock it waited for. An owner string from anywhere is one shell word."""
from __future__ import annotations

import subprocess

from buildkit_ops.engine import host_lock


def start(path, who: str, wait: int) -> subprocess.Popen:
    return subprocess.Popen(["sh", "-c", host_lock.script(who, wait, 60, str(path))], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_a_second_run_waits_then_stops_naming_who_holds_the_lock(tmp_path):
    path = tmp_path / "bk.lock"
    first = start(path, "alice@ops1 (provision, since 2026-12-01T20:00:00+00:00)", 1)
    assert first.stdout.readline() == "@@locked\n"
    second = start(path, "bob@ops2 (provision)", 1)
    out, _ = second.communicate(timeout=10)
    assert second.returncode == 3
    assert out.splitlines()[-1] == "@@held alice@ops1 (provision, since 2026-12-01T20:00:00+00:00)"
    first.stdin.close()          # the run ends (or its connection goes): the lock is free again
    first.wait(timeout=10)
    third = start(path, "bob@ops2 (provision)", 1)
    assert third.stdout.readline() == "@@locked\n"
    third.stdin.close()
    third.wait(timeout=10)


def test_a_run_that_waits_says_for_whom(tmp_path):
    path = tmp_path / "bk.lock"
    first = start(path, "alice@ops1 (cache-prune)", 1)
    assert first.stdout.readline() == "@@locked\n"
    second = start(path, "bob@ops2 (provision)", 30)
    assert second.stdout.readline() == "@@busy alice@ops1 (cache-prune)\n"
    first.stdin.close()
    assert second.stdout.readline() == "@@locked\n"
    second.stdin.close()
    first.wait(timeout=10)
    second.wait(timeout=10)


def test_an_owner_string_is_one_word_whatever_it_holds(tmp_path):
    path = tmp_path / "bk.lock"
    run = start(path, "x'; touch /tmp/pwned-by-owner; echo '", 1)
    assert run.stdout.readline() == "@@locked\n"
    run.stdin.close()
    run.wait(timeout=10)
    assert (tmp_path / "bk.lock.owner").read_text() == "x'; touch /tmp/pwned-by-owner; echo '\n"
