#!/usr/bin/env python3
"""Where a run's time went, from its trace (BKOPS_TRACE=FILE, buildkit_ops/engine/trace.py): per target, its
SSH connections, remote commands and uploads (how many, their seconds, bytes sent), each command on a line, and
the span from the first to the last. Targets work in parallel: their seconds overlap.
Usage: .venv/bin/python bench/trace_summary.py FILE [--wall SECONDS]   (--wall: the run's own time, to show the
part before the first connection and after the last command: the Python process, the local PKI, the output)"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path


def summary(lines: list[dict], wall: float | None = None) -> str:
    if not lines:
        return "(nothing traced)"
    first = min(x["began"] for x in lines)
    last = max(x["began"] + x["seconds"] for x in lines)
    out = []
    per: dict[str, list[dict]] = defaultdict(list)
    for x in lines:
        per[x["target"]].append(x)
    for target, xs in sorted(per.items()):
        kinds = defaultdict(lambda: [0, 0.0, 0])
        for x in xs:
            k = kinds[x["what"]]
            k[0] += 1
            k[1] += x["seconds"]
            k[2] += x["sent"]
        said = ", ".join(f"{n} {what}{'s' if n > 1 else ''} {secs:.2f} s" + (f" ({sent / 1e3:.0f} kB)" if sent else "")
                         for what, (n, secs, sent) in kinds.items())
        out.append(f"{target}: {said}")
        for x in sorted(xs, key=lambda x: x["began"]):
            out.append(f"  +{x['began'] - first:6.2f}  {x['seconds']:5.2f} s  {x['what']:8} {x['label']}")
    out.append(f"from the first connection to the last command's end: {last - first:.2f} s")
    if wall is not None:
        out.append(f"the rest of the run (the Python process, local work, output): {wall - (last - first):.2f} s "
                   f"of {wall:.2f} s")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--wall", type=float)
    a = ap.parse_args()
    lines = [json.loads(x) for x in Path(a.file).read_text().splitlines() if x.strip()]
    print(summary(lines, a.wall))


if __name__ == "__main__":
    main()
