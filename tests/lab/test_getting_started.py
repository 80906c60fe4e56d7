"""docs/getting-started.md runs as written on the lab: every line of its `sh` blocks, in order, on a brand-new
build2 and on laptop2, through the `bkops` command itself, with the lab's addresses, SSH key and fingerprints
put in for the example ones, and the lab's image archives given to `init` with --set (this machine has no Docker
Hub)."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
from helpers import ROOT, fingerprint, invoke, lab_settings, login, write_project

pytestmark = pytest.mark.lab

DOC = ROOT / "docs/getting-started.md"


def lines() -> list[str]:
    out = []
    for body in re.findall(r"```sh\n(.*?)```", DOC.read_text(), re.S):
        out += [line.strip() for line in body.splitlines() if line.strip() and not line.startswith("#")]
    return out


def test_getting_started_runs_as_written(lab, reg, tmp_path):
    lab.reset("build2")                                        # the fresh VM
    login(lab, "laptop2", reg)
    write_project(lab, "laptop2", reg)
    shim = tmp_path / "bin" / "bkops"                          # the installed command, from this checkout
    shim.parent.mkdir()
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} -c 'from buildkit_ops.program import main; main()' \"$@\"\n")
    shim.chmod(0o755)
    env = dict(os.environ, PATH=f"{shim.parent}:{os.environ['PATH']}", PYTHONPATH=str(ROOT))
    put = {"203.0.113.10": "10.77.0.12", "198.51.100.7": "10.77.0.22", "198.51.100.20": "10.77.0.40",
           "~/.ssh/id_ed25519": str(ROOT / ".lab/ssh/id_ed25519"),
           "SHA256:build1-fingerprint": fingerprint("10.77.0.12"), "SHA256:alice-fingerprint": fingerprint("10.77.0.22")}
    try:
        said = []
        for line in lines():
            for example, real in put.items():
                line = line.replace(example, real)
            if line.startswith("bkops init "):
                line += "".join(f" --set '{s}'" for s in lab_settings())
            r = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=900)
            assert r.returncode == 0, (line, r.stderr[-3000:])
            said.append(r.stderr)
        assert "no changes" in said[3]                         # the second provision
        assert (tmp_path / "team-builds/.pki/ci/ci-runner").is_dir() and (tmp_path / "team-builds/pki.age").exists()
        assert (tmp_path / "team-builds/.pki/ca.key").read_bytes() not in (tmp_path / "team-builds/pki.age").read_bytes()
    finally:
        invoke("provision", "--host", "build2")               # (the session's build2 again, for the modules after)
