"""The end of a revoked certificate's open connections (roles/gateway/cut.sh, run for real by sh, tac and awk,
with stand-ins for docker and ss): the newest `connection` line of each open connection says whose certificate
holds it; only the revoked ones are killed, whatever address they share with others; the log is read from its
end, across its rotations, until every open connection is named."""
from __future__ import annotations

import json
import os
import subprocess

from buildkit_ops.roles.gateway import handlers as gateway_handlers

OPEN = ["10.77.0.22:5001", "10.77.0.21:6000", "10.77.0.21:6001", "10.77.0.21:7000", "[fd00::7]:8000"]


def entry(text: str) -> str:
    return json.dumps({"log": text + "\n", "stream": "stdout", "time": "2026-12-07T10:00:00.1Z"},
                      separators=(",", ":")) + "\n"


def run_cut(tmp_path, files: list[list[str]], revoked: str, open_: list[str] = OPEN) -> list[str]:
    """cut.sh with stand-ins for docker (the log's path) and ss (the open connections; records what it was asked
    to kill). files[0] is the live log, files[1] its rotation .1, ..."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    live = tmp_path / "x-json.log"
    for n, lines in enumerate(files):
        (tmp_path / (live.name + (f".{n}" if n else ""))).write_text("".join(entry(t) for t in lines))
    (tmp_path / "open").write_text("".join(f"0 0 10.77.0.11:1234 {a}\n" for a in open_))
    (bin_ / "docker").write_text(f"#!/bin/sh\necho {live}\n")
    (bin_ / "ss").write_text(f'#!/bin/sh\ncase "$*" in *-K*) echo "$*" >> {tmp_path}/killed; echo one ;;\n'
                             f'*) cat {tmp_path}/open ;; esac\n')
    for f in bin_.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}", "BKOPS_PORT": "1234", "BKOPS_REVOKED": revoked}
    r = subprocess.run(["sh", "-s"], input=gateway_handlers.CUT_SCRIPT, env=env, capture_output=True, text=True,
                       check=True)
    killed = (tmp_path / "killed").read_text().splitlines() if (tmp_path / "killed").exists() else []
    assert r.stdout.split("@@cut\n")[1].strip() == str(len(killed))
    return killed


LIVE = ["connection client=laptop2 serial=AB12 addr=10.77.0.21:6000",        # revoked, from laptop's address
        "connection client=laptop serial=CD34 addr=10.77.0.21:6001",         # laptop's own: left alone
        "connection client=laptop2 serial=AB12 addr=10.77.0.21:7000",
        "connection client=laptop serial=CD34 addr=10.77.0.21:7000",         # port reused by laptop since
        "connection client=x serial=EF addr=fd00::7:8000",                   # IPv6
        "[NOTICE] Loading success"]
OLDER = ["connection client=laptop2 serial=00AB12 addr=10.77.0.22:5001"]   # revoked (DER's leading zero)


def test_a_revocation_ends_only_the_revoked_certificates_connections(tmp_path):
    killed = run_cut(tmp_path, [LIVE, OLDER], "ab12 ef")
    assert sorted(killed) == sorted([
        "-K -tnH state established ( sport = :1234 and dst 10.77.0.22 and dport = :5001 )",
        "-K -tnH state established ( sport = :1234 and dst 10.77.0.21 and dport = :6000 )",
        "-K -tnH state established ( sport = :1234 and dst [fd00::7] and dport = :8000 )"])
    (tmp_path / "none").mkdir()
    assert run_cut(tmp_path / "none", [LIVE, OLDER], "") == []


def test_the_newest_line_of_an_open_connection_decides_in_whichever_file_it_is(tmp_path):
    # an older line of a revoked certificate for an address that laptop holds now counts for nothing: the newest
    # line of each open connection decides (and the reading stops once every open one is named)
    stale = ["connection client=laptop2 serial=AB12 addr=10.77.0.21:6001"]
    assert run_cut(tmp_path, [LIVE, OLDER, stale], "ab12", open_=["10.77.0.21:6001"]) == []
    # the control: with the newest line gone, that same older line would have it killed
    (tmp_path / "control").mkdir()
    assert run_cut(tmp_path / "control", [LIVE[:1], OLDER, stale], "ab12", open_=["10.77.0.21:6001"]) == [
        "-K -tnH state established ( sport = :1234 and dst 10.77.0.21 and dport = :6001 )"]
    (tmp_path / "nothing-open").mkdir()
    assert run_cut(tmp_path / "nothing-open", [LIVE, OLDER], "ab12 ef", open_=[]) == []
