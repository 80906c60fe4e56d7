"""The image inside a `docker save` tarball that a role uploads to a host lacking it (air-gapped hosts, the lab):
its ID, read once per file version, to compare with what the host has."""
from __future__ import annotations

import json
import tarfile
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=8)
def _config_digest(path: str, mtime: float, size: int) -> str:
    with tarfile.open(path) as t:
        member = t.extractfile("manifest.json")
        if member is None:
            raise FileNotFoundError(f"{path} is not a `docker save` archive (no manifest.json)")
        manifest = json.load(member)
    cfg: str = manifest[0]["Config"]
    return "sha256:" + cfg.split("/")[-1].removesuffix(".json")


def image_id(archive: str | None, key: str) -> str | None:
    """The image ID in `archive` (None: no archive); `key` names the inventory setting in the error."""
    if not archive:
        return None
    p = Path(archive)
    if not p.exists():
        raise FileNotFoundError(f"{key} {archive} does not exist: build it (the lab: `invoke lab.up`) or fix {key} "
                                f"in the inventory")
    st = p.stat()
    return _config_digest(str(p), st.st_mtime, st.st_size)
