"""status in Prometheus text format."""
from __future__ import annotations

from typing import Any


def prometheus(doc: dict[str, Any]) -> str:
    """status as Prometheus text format, for node_exporter's textfile collector."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    lines: list[str] = []
    metrics = [("buildkit_ops_up", "gauge", "1 when the host answered"),
               ("buildkit_ops_cache_bytes", "gauge", "BuildKit cache size"),
               ("buildkit_ops_gc_limit_bytes", "gauge", "the most the cache keeps before the GC frees it"),
               ("buildkit_ops_disk_free_bytes", "gauge", "free space on the cache's filesystem"),
               ("buildkit_ops_builds", "gauge", "builds started in the window"),
               ("buildkit_ops_builds_failed", "gauge", "failed builds started in the window"),
               ("buildkit_ops_build_seconds", "gauge", "build duration quantile in the window"),
               ("buildkit_ops_cache_hit_ratio", "gauge", "cached steps / all steps in the window"),
               ("buildkit_ops_client_builds", "gauge", "builds per client in the window")]
    samples: dict[str, list[str]] = {m: [] for m, _, _ in metrics}
    for host, h in doc["hosts"].items():
        hl = f'host="{esc(host)}"'
        samples["buildkit_ops_up"].append(f"{{{hl}}} {1 if h.get('reachable') else 0}")
        if not h.get("reachable"):
            continue
        c = h["cache"]
        samples["buildkit_ops_cache_bytes"].append(f"{{{hl}}} {c['total']}")
        for key, metric in (("gc_limit", "buildkit_ops_gc_limit_bytes"), ("disk_free", "buildkit_ops_disk_free_bytes")):
            if c.get(key) is not None:
                samples[metric].append(f"{{{hl}}} {c[key]}")
        for window, w in (h.get("builds") or {}).items():
            wl = f'{hl},window="{window}"'
            samples["buildkit_ops_builds"].append(f"{{{wl}}} {w['builds']}")
            samples["buildkit_ops_builds_failed"].append(f"{{{wl}}} {w['failed']}")
            for q, key in (("0.5", "median_seconds"), ("0.95", "p95_seconds")):
                if w[key] is not None:
                    samples["buildkit_ops_build_seconds"].append(f'{{{wl},quantile="{q}"}} {w[key]}')
            if w["cache_hit_ratio"] is not None:
                samples["buildkit_ops_cache_hit_ratio"].append(f"{{{wl}}} {w['cache_hit_ratio']}")
            for client, n in w["clients"].items():
                samples["buildkit_ops_client_builds"].append(f'{{{wl},client="{esc(client)}"}} {n}')
    for name, kind, help_ in metrics:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"] + [name + s for s in samples[name]]
    return "\n".join(lines) + "\n"
