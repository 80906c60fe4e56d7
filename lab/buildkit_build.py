#!/usr/bin/env python3
"""Compile buildkitd and buildctl from Debian's docker.io source package.

No Docker Hub and no GitHub here, so the lab's BuildKit comes from Debian:
trixie's docker.io source ships BuildKit v0.13.2 as the `orig-buildkit`
component tarball, with vendor/ stripped. We build it in GOPATH mode against
trixie's golang-*-dev packages, unpacked into a private directory (installing
them with apt would upgrade libc6 and hundreds of packages).

Usage: buildkit_build.py OUTDIR   (writes OUTDIR/buildkitd and OUTDIR/buildctl)

Everything downloaded is kept under $BKOPS_CACHE/buildkit-src, so an unchanged
rebuild costs seconds. Only the standard library is used.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

SOURCE_VERSION = "26.1.5+dfsg1-9+deb13u1"
TOOLCHAIN = ["golang-1.24-go", "golang-1.24-src"]
# Import paths that more than one package provides: the choice that builds.
PREFERRED = {
    "github.com/golang/protobuf": "golang-github-golang-protobuf-1-5-dev",
    "github.com/gogo/protobuf": "golang-github-gogo-protobuf-dev",
}
# Older copies of those paths that some packages still depend on; unpacked into
# the same GOPATH they would clash with the preferred ones.
EXCLUDED = {"golang-github-golang-protobuf-1-3-dev"}
CACHE = Path(os.environ.get("BKOPS_CACHE", "/var/cache/buildkit-ops")) / "buildkit-src"


def log(msg: str) -> None:
    print(f"[buildkit] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def apt_index(kind: str) -> str:
    lists = Path("/var/lib/apt/lists")
    for f in sorted(lists.iterdir()):
        if "_trixie_main_" in f.name and f.name.split("_trixie_main_")[1].startswith(kind):
            return run(["/usr/lib/apt/apt-helper", "cat-file", str(f)], capture_output=True).stdout
    raise SystemExit(f"no trixie {kind} index in {lists}: run lab/host-setup.sh (it adds the trixie apt source)")


def stanzas(text: str):
    cur: dict[str, str] = {}
    key = None
    for line in text.splitlines():
        if not line.strip():
            if cur:
                yield cur
            cur, key = {}, None
        elif line[0] in " \t" and key:
            cur[key] += "\n" + line.strip()
        else:
            key, _, val = line.partition(":")
            cur[key] = val.strip()
    if cur:
        yield cur


def dep_names(field: str) -> list[str]:
    names = []
    for part in field.split(","):
        alt = part.split("|")[0].strip()
        name = re.split(r"[\s(\[<:]", alt, maxsplit=1)[0]
        if name:
            names.append(name)
    return names


def main(outdir: Path) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    packages = {s["Package"]: s for s in stanzas(apt_index("binary-amd64_Packages"))}
    sources = list(stanzas(apt_index("source_Sources")))
    src = next((s for s in sources if s.get("Package") == "docker.io" and s.get("Version") == SOURCE_VERSION), None)
    if src is None:
        raise SystemExit(f"docker.io {SOURCE_VERSION} is not in trixie's Sources index")
    import_map: dict[str, list[str]] = {}
    for s in sources:
        for path in s.get("Go-Import-Path", "").replace(",", " ").split():
            bins = [b for b in dep_names(s.get("Binary", "")) if b.endswith("-dev") and b in packages]
            import_map.setdefault(path, []).extend(bins)

    # 1. the source tarballs, checked against the index's SHA256
    srcdir = CACHE / "src"
    if not (srcdir / "done").exists():
        shutil.rmtree(srcdir, ignore_errors=True)
        srcdir.mkdir(parents=True)
        # (in an empty directory: apt leaves out files already in the current one)
        uris = run(["apt-get", "source", "--print-uris", f"docker.io={SOURCE_VERSION}"],
                   capture_output=True, cwd=srcdir).stdout
        wanted = {}
        for m in re.finditer(r"'(\S+)' (\S+) \d+ SHA256:([0-9a-f]+)", uris):
            url, name, sha = m.groups()
            if name.endswith(("orig-buildkit.tar.xz", "debian.tar.xz")):
                wanted[name] = (url, sha)
        if len(wanted) != 2:
            raise SystemExit(f"could not find the buildkit and debian tarballs in:\n{uris}")
        for name, (url, sha) in wanted.items():
            dest = CACHE / name
            if not dest.exists():
                log(f"downloading {name}")
                run(["curl", "-fsSL", "-o", str(dest) + ".part", url])
                os.replace(str(dest) + ".part", dest)
            got = run(["sha256sum", str(dest)], capture_output=True).stdout.split()[0]
            if got != sha:
                dest.unlink()
                raise SystemExit(f"{name}: sha256 {got} != {sha}")
        tree = srcdir / "gopath/src/github.com/moby/buildkit"
        tree.mkdir(parents=True)
        bk = next(n for n in wanted if "orig-buildkit" in n)
        deb = next(n for n in wanted if "debian.tar" in n)
        run(["tar", "-xf", str(CACHE / bk), "-C", str(tree), "--strip-components=2"])
        run(["tar", "-xf", str(CACHE / deb), "-C", str(srcdir)])
        # 2. Debian's patches, only the hunks that touch buildkit/
        series = (srcdir / "debian/patches/series").read_text().split("\n")
        for patch in [p.split()[0] for p in series if p.strip() and not p.startswith("#")]:
            pf = srcdir / "debian/patches" / patch
            # the buildkit/ component itself, and the engine's vendored copy of it
            # (Debian's security fixes for BuildKit land there)
            for pattern, strip in (("*/buildkit/*", 2), ("*/engine/vendor/github.com/moby/buildkit/*", 6)):
                hunk = run(["filterdiff", "-i", pattern, *(["-x", "*/vendor/*"] if strip == 2 else []), str(pf)],
                           capture_output=True).stdout
                if "\n@@ " in hunk:
                    rev = subprocess.run(["patch", f"-p{strip}", "-s", "-R", "--dry-run", "-d", str(tree)],
                                         input=hunk, text=True, capture_output=True)
                    if strip == 6 and rev.returncode == 0:
                        continue  # the same fix, already applied through the other copy
                    r = subprocess.run(["patch", f"-p{strip}", "-s", "-N", "-d", str(tree)], input=hunk,
                                       text=True, capture_output=True)
                    if r.returncode:
                        raise SystemExit(f"patch {patch} does not apply:\n{r.stdout[-1500:]}")
                    log(f"applied {patch}")
        (srcdir / "done").touch()
    gopath_src = srcdir / "gopath"
    tree = gopath_src / "src/github.com/moby/buildkit"

    # 3. the Go packages: Build-Depends, toolchain, and their golang-* closure
    debs = CACHE / "debs"
    unpacked = CACHE / "unpacked"
    debs.mkdir(exist_ok=True)
    unpacked.mkdir(exist_ok=True)
    have: set[str] = set()

    def closure(names):
        todo, seen = list(names), set()
        while todo:
            n = todo.pop()
            if n in seen or n not in packages or n in EXCLUDED:
                continue
            seen.add(n)
            for d in dep_names(packages[n].get("Depends", "")):
                if d.startswith("golang-") and d not in seen:
                    todo.append(d)
        return seen

    def fetch(names):
        new = sorted(closure(names) - have)

        def deb_of(n):
            # apt-get download names files NAME_VERSION_ARCH.deb with the epoch's ':' as %3a
            ver = packages[n]["Version"].replace(":", "%3a")
            hits = list(debs.glob(f"{n}_{ver}_*.deb"))
            return hits[0] if hits else None

        missing_debs = [f"{n}={packages[n]['Version']}" for n in new if deb_of(n) is None]
        if missing_debs:
            log(f"downloading {len(missing_debs)} packages")
            for i in range(0, len(missing_debs), 40):
                run(["apt-get", "download", "-qq", "-o", "APT::Sandbox::User=root", *missing_debs[i:i + 40]], cwd=debs,
                    stdout=subprocess.DEVNULL)
        for n in new:
            deb = deb_of(n)
            if deb is None:
                raise SystemExit(f"apt-get download did not produce {n}")
            marker = unpacked / f".{deb.name}"
            if not marker.exists():
                run(["dpkg-deb", "-x", str(deb), str(unpacked)])
                marker.touch()
            have.add(n)
        return new

    # Start from the toolchain alone and add what `go list` says is missing:
    # the whole Build-Depends list holds conflicting versions (protobuf 1.3 and 1.5).
    fetch(TOOLCHAIN)
    goroot = unpacked / "usr/lib/go-1.24"
    env = dict(os.environ, GOROOT=str(goroot), GOPATH=f"{gopath_src}:{unpacked}/usr/share/gocode",
               GO111MODULE="off", GOPROXY="off", GOTOOLCHAIN="local", CGO_ENABLED="0",
               GOFLAGS="", GOCACHE=str(CACHE / "gocache"), PATH=f"{goroot}/bin:{os.environ['PATH']}")
    go = str(goroot / "bin/go")
    targets = ["./cmd/buildkitd", "./cmd/buildctl"]
    for _ in range(10):
        out = run([go, "list", "-e", "-deps", "-f", "{{if .Error}}{{.ImportPath}}{{end}}", *targets],
                  capture_output=True, cwd=tree, env=env).stdout.split()
        missing = sorted({m for m in out if "." in m.split("/")[0]})
        if not missing:
            break
        wanted = set()
        for m in missing:
            parts = m.split("/")
            for i in range(len(parts), 0, -1):
                prefix = "/".join(parts[:i])
                if prefix in PREFERRED:
                    wanted.add(PREFERRED[prefix])
                    break
                if import_map.get(prefix):
                    wanted.add(import_map[prefix][0])
                    break
        if not fetch(wanted):
            raise SystemExit("cannot resolve these imports from trixie's packages:\n  " + "\n  ".join(missing))
    log(f"{len(have)} Go packages unpacked; compiling")
    outdir.mkdir(parents=True, exist_ok=True)
    ldflags = "-s -w -X github.com/moby/buildkit/version.Version=v0.13.2 " \
              "-X github.com/moby/buildkit/version.Package=github.com/moby/buildkit"
    for t in targets:
        name = t.rsplit("/", 1)[1]
        run([go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(outdir / name), t], cwd=tree, env=env)
    log(f"built {outdir}/buildkitd and buildctl")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
