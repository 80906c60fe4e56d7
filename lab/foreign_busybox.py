"""Debian's busybox-static for another architecture (the lab's arm64 base image), fetched from the Debian
mirror this machine already uses, checked against the SHA256 of the mirror's Packages index, and cached."""
from __future__ import annotations

import hashlib
import lzma
import re
import subprocess
import tempfile
import urllib.request
from pathlib import Path

SUITE = "bookworm"


def mirror() -> str:
    """The first Debian mirror in this machine's apt sources (deb822 or one-line)."""
    for f in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")) + [Path("/etc/apt/sources.list")]:
        text = f.read_text() if f.exists() else ""
        m = (re.search(r"^URIs:\s*(\S+/debian)/?\s*$", text, re.M)
             or re.search(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", text, re.M))
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def busybox(arch: str, cache: Path) -> Path:
    """The path of a static busybox binary for `arch` (e.g. arm64), downloaded once into `cache`."""
    out = cache / f"busybox-static-{arch}"
    if out.exists():
        return out
    base = mirror()
    with urllib.request.urlopen(f"{base}/dists/{SUITE}/main/binary-{arch}/Packages.xz", timeout=60) as r:
        index = lzma.decompress(r.read()).decode()
    stanza = next(s for s in index.split("\n\n") if re.search(r"^Package: busybox-static$", s, re.M))
    filename = re.search(r"^Filename: (\S+)$", stanza, re.M).group(1)  # type: ignore[union-attr]
    sha = re.search(r"^SHA256: (\S+)$", stanza, re.M).group(1)  # type: ignore[union-attr]
    with urllib.request.urlopen(f"{base}/{filename}", timeout=120) as r:
        deb = r.read()
    if hashlib.sha256(deb).hexdigest() != sha:
        raise RuntimeError(f"{filename}: SHA256 does not match the Packages index")
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "p.deb").write_bytes(deb)
        subprocess.run(["dpkg-deb", "-x", f"{d}/p.deb", f"{d}/root"], check=True)
        cache.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes((Path(d) / "root" / "bin" / "busybox").read_bytes())
        tmp.chmod(0o755)
        tmp.replace(out)
    return out
