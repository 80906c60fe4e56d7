"""The gateway's log read back from its end to the window asked, and no further: the script runs for real here
(sh, tac, awk, grep), over json-file logs as Docker writes them (the live file and its rotations) and a stand-in
`docker inspect` that names the live file; its lines decode to the text the audit parser reads."""
from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import os
import subprocess

from buildkit_ops.roles.gateway.exports import as_log_text, log_window, parse_audit

NOW = dt.datetime.now(dt.timezone.utc)


def entry(minutes_ago: float, text: str) -> str:
    t = NOW - dt.timedelta(minutes=minutes_ago)
    # (Docker's RFC 3339 time drops the fraction's trailing zeros; Go escapes <, > and & in the JSON)
    stamp = t.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"
    line = json.dumps({"log": text + "\n", "stream": "stdout", "time": stamp}, separators=(",", ":"))
    return line.replace("<", "\\u003c") + "\n"


def call(minutes_ago: float, client: str, method: str = "/moby.buildkit.v1.Control/Solve") -> str:
    began = NOW - dt.timedelta(minutes=minutes_ago, seconds=2)
    return entry(minutes_ago, f"{began:%d/%b/%Y:%H:%M:%S}.000 client={client} role=developer "
                              f'method="{method}" result=ok status=200 ms=2000 in=300 out=90 term=-- waited=-')


def logs(tmp_path, files: list[list[str]]):
    """files[0] is the live file, files[1] its rotation .1, ... (older each)."""
    live = tmp_path / "abc-json.log"
    for n, lines in enumerate(files):
        (tmp_path / (live.name + (f".{n}" if n else ""))).write_text("".join(lines))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(f"#!/bin/sh\necho {live}\n")
    (bin_dir / "docker").chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def run(env, script: str) -> str:
    r = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def lines_of(raw: str) -> list[str]:
    """What the script sent (gzipped, base64 on one line): the log's raw lines, newest first."""
    return gzip.decompress(base64.b64decode(raw)).decode().splitlines()


def sent(text: str) -> str:
    return base64.b64encode(gzip.compress(text.encode())).decode() + "\n"


def test_only_the_window_is_read_newest_first_across_rotations_and_decoded_oldest_first(tmp_path):
    env = logs(tmp_path, [[call(50, "live-old"), call(5, "c"), call(1, "d")],
                          [call(90, "b"), call(70, "rot1-new")],
                          [call(3000, "too-old"), call(2000, "too-old-2")]])
    raw = run(env, log_window(2 * 3600))
    clients = [json.loads(line)["log"].split("client=")[1].split()[0] for line in lines_of(raw)]
    assert clients == ["d", "c", "live-old", "rot1-new", "b"]      # newest first; the older file never reached
    calls = parse_audit(as_log_text(raw))
    assert [c.client for c in calls] == ["b", "rot1-new", "live-old", "c", "d"]
    assert calls[-1].ended[:16] == (NOW - dt.timedelta(minutes=1)).isoformat()[:16]
    # the control: a window of three days reaches the oldest file too
    assert [c.client for c in parse_audit(as_log_text(run(env, log_window(3 * 86400))))][:2] == ["too-old",
                                                                                                 "too-old-2"]


def test_the_reading_stops_at_the_first_line_older_than_the_window_and_keeps_only_what_is_asked(tmp_path):
    # (a file that is not JSON past the window would fail the decoding: it is never read)
    env = logs(tmp_path, [[call(30, "laptop", "/moby.buildkit.v1.Control/Status"), call(10, "laptop")],
                          ["not json at all\n" * 3]])
    only_solves = run(env, log_window(3600, ('method="/moby.buildkit.v1.Control/Solve"',)))
    assert [c.method for c in parse_audit(as_log_text(only_solves))] == ["/moby.buildkit.v1.Control/Solve"]
    assert len(lines_of(run(env, log_window(3600, newest=1)))) == 1
    # a line cut short (the log rotated while it was read) is skipped, not a failure; nor is output that is not
    # the script's (a host that could not run it)
    assert as_log_text(sent('{"log": "cut\n{"log": "x\\n", "time": "2026-12-07T10:00:00.5Z"}')) == \
        "2026-12-07T10:00:00.500000000Z x"
    assert as_log_text("Error: No such object: buildkit-gateway\n") == ""


def test_times_are_read_as_text_to_the_millisecond_and_a_time_that_cannot_be_is_skipped():
    line = ('{logged} {start} client=laptop addr=10.77.0.21 role=developer method="/moby.buildkit.v1.Control/Solve" '
            'result=ok status=200 ms=5 in=1 out=2 term=-- waited=-')
    calls = parse_audit("\n".join(line.format(logged=lg, start=st) for lg, st in (
        ("2026-12-07T14:03:58.000099999Z", "07/Dec/2026:14:03:56.999"),
        ("2026-12-07T14:03:58.5Z", "07/Dec/2026:14:03:57.000"),
        ("2026-12-07T14:03:58Z", "31/Dec/2026:23:59:59.001"),
        ("2026-12-07T14:03:58Z", "07/Dex/2026:14:03:56.999"),      # (no such month)
        ("2026-12-07T14:03:58Z", "07/Dec/2026:24:03:56.999"))))    # (no such hour)
    assert [(c.ended, c.started) for c in calls] == [
        ("2026-12-07T14:03:58.000+00:00", "2026-12-07T14:03:56.999+00:00"),
        ("2026-12-07T14:03:58.500+00:00", "2026-12-07T14:03:57.000+00:00"),
        ("2026-12-07T14:03:58.000+00:00", "2026-12-31T23:59:59.001+00:00")]


def test_the_builds_window_keeps_the_solve_calls_and_the_starts_of_builds_still_running(tmp_path):
    from buildkit_ops.engine.facts import sections
    from buildkit_ops.insights.builds import solves_snippet
    from buildkit_ops.roles.gateway.exports import build_owners
    env = logs(tmp_path, [[call(9, "laptop"), call(8, "laptop", "/moby.buildkit.v1.Control/Status"),
                           entry(7, "solve started client=laptop2 ref=r2 session=s2"),
                           entry(6, "connection client=laptop2 serial=AB addr=10.77.0.22:5000")]])
    text = as_log_text(sections(run(env, solves_snippet(3600)))["solves"])
    assert [c.method for c in parse_audit(text)] == ["/moby.buildkit.v1.Control/Solve"]
    assert build_owners(text) == {"r2": "laptop2"}            # (a build still running: its start line alone)
    assert "connection" not in text and "Status" not in text
