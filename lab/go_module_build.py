#!/usr/bin/env python3
"""Compile Go programs of a module at a release tag, through the Go module proxy (no GitHub here).

The lab's second BuildKit is the current one (buildkitd and buildctl), and its current buildx, built from their
modules: `go mod download` of the module at the tag gives its source (module zips carry no vendor/), and a
build in module mode fetches its dependencies from the proxy as go.sum pins them. Everything lands under
$BKOPS_CACHE/gopath, so a rebuild costs seconds and a second machine of the same kind downloads nothing twice.

Usage: go_module_build.py MODULE VERSION OUTDIR ./cmd/a [./cmd/b ...]
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CACHE = Path(os.environ.get("BKOPS_CACHE", "/var/cache/buildkit-ops"))


def go_env() -> dict[str, str]:
    return {**os.environ, "GOPATH": str(CACHE / "gopath"), "GOFLAGS": "-mod=mod", "CGO_ENABLED": "0",
            "GOTOOLCHAIN": "local", "GOCACHE": str(CACHE / "gocache")}


def build(module: str, version: str, outdir: Path, commands: list[str]) -> None:
    env = go_env()
    got = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], env=env, capture_output=True,
                         text=True, cwd=tempfile.gettempdir())
    info = json.loads(got.stdout or "{}")
    if got.returncode != 0 or "Dir" not in info:
        raise SystemExit(f"cannot download {module}@{version} from the Go module proxy: "
                         f"{info.get('Error') or got.stderr.strip()}")
    with tempfile.TemporaryDirectory(prefix="go-module-build-") as work:
        src = Path(work) / "src"
        shutil.copytree(info["Dir"], src)            # (the module cache is read-only; go build writes go.sum here)
        for p in src.rglob("*"):
            p.chmod(p.stat().st_mode | 0o200)
        tmp = outdir.with_name(outdir.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        subprocess.run(["go", "build", "-trimpath", "-ldflags", f"-X {module}/version.Version={version}",
                        "-o", str(tmp) + "/", *commands], env=env, cwd=src, check=True)
        shutil.rmtree(outdir, ignore_errors=True)
        os.replace(tmp, outdir)


if __name__ == "__main__":
    build(sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4:])
