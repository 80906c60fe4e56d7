"""The cache's size as buildctl reports it."""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Usage:
    records: int
    total: int           # bytes
    reclaimable: int     # bytes not in use


def usage(text: str | None) -> Usage:
    """Totals from `buildctl du --format '{{json .}}'`."""
    try:
        records = json.loads(text or "[]") or []
    except json.JSONDecodeError:
        return Usage(0, 0, 0)
    return Usage(len(records), sum(r.get("size", r.get("Size", 0)) for r in records),
                 sum(r.get("size", r.get("Size", 0)) for r in records if not r.get("inUse", r.get("InUse", False))))
