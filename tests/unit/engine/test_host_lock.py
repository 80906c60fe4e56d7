"""The host lock's script, run for real with flock on this machine (a temporary lock file): the first run holds
the lock as long as its stdin is open; a second waits, then stops naming the holder; once the first lets go, the
second takes it and says whose lock it waited for. An owner string from anywhere is one shell word. Facts read
beside the lock (one round trip for both) wait until the lock is the run's own."""
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
    assert (tmp_path / "bk.lock.owner").read_text() == "x'; touch /tmp/pwned-by-owner; echo '\n\n"


def test_facts_read_beside_the_lock_wait_until_it_is_this_runs_and_say_so(tmp_path):
    path = tmp_path / "bk.lock"
    other = start(path, "alice@ops1 (provision)", 1)
    assert other.stdout.readline() == "@@locked\n"
    waits = subprocess.Popen(["sh", "-c", host_lock.under_lock("t0ken", str(path)) + "echo read"],
                             stdout=subprocess.PIPE, text=True)
    mine = subprocess.Popen(["sh", "-c", host_lock.script("bob@ops2 (provision)", 30, 60, str(path), token="t0ken")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert mine.stdout.readline().startswith("@@busy alice@ops1")
    other.stdin.close()               # alice's run ends: bob's takes the lock, and only then are the facts read
    assert mine.stdout.readline() == "@@locked\n"
    assert waits.communicate(timeout=10)[0] == "@@host_lock\nours\nread\n"
    # the control: facts whose token never holds the lock say so (and are read again once it does)
    late = subprocess.run(["sh", "-c", host_lock.under_lock("other", str(path), steps=3)],
                          capture_output=True, text=True, timeout=10)
    assert late.stdout == "@@host_lock\nnot yet\n"
    mine.stdin.close()
    mine.wait(timeout=10)
    other.wait(timeout=10)
