"""The cache's size as buildctl reports it."""
from __future__ import annotations

import json


def usage(text: str | None) -> dict[str, int]:
    """Totals from `buildctl du --format '{{json .}}'`."""
    try:
        records = json.loads(text or "[]") or []
    except json.JSONDecodeError:
        return {"records": 0, "total": 0, "reclaimable": 0}
    return {"records": len(records), "total": sum(r.get("size", r.get("Size", 0)) for r in records),
            "reclaimable": sum(r.get("size", r.get("Size", 0)) for r in records
                               if not r.get("inUse", r.get("InUse", False)))}
