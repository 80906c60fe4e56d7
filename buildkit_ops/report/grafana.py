"""A Grafana dashboard (JSON, importable: Dashboards > New > Import) for the figures `bkops status
--prometheus` prints for a textfile collector: hosts up, builds and failures, build time (median, p95), the
share of cached steps, the cache against its GC limit and the free disk, and the busiest clients. Made from
status_views.METRICS, so that a metric is never missing from it (docs/grafana-dashboard.json is this, written
out)."""
from __future__ import annotations

import json
from typing import Any

DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# (title, unit, [(expression, legend)]) per panel, in the dashboard's order
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("Build hosts up", "none", [("buildkit_ops_up", "{{host}}")]),
    ("Builds in the last 24 hours", "none", [('buildkit_ops_builds{window="24h"}', "{{host}}"),
                                             ('buildkit_ops_builds_failed{window="24h"}', "{{host}} failed")]),
    ("Build time (24 hours)", "s", [('buildkit_ops_build_seconds{window="24h",quantile="0.5"}', "{{host}} median"),
                                    ('buildkit_ops_build_seconds{window="24h",quantile="0.95"}', "{{host}} p95")]),
    ("Share of cached steps (24 hours)", "percentunit", [('buildkit_ops_cache_hit_ratio{window="24h"}', "{{host}}")]),
    ("Cache, GC limit and free disk", "bytes", [("buildkit_ops_cache_bytes", "{{host}} cache"),
                                                ("buildkit_ops_gc_limit_bytes", "{{host}} GC limit"),
                                                ("buildkit_ops_disk_free_bytes", "{{host}} disk free")]),
    ("Builds per client (24 hours)", "none", [('buildkit_ops_client_builds{window="24h"}', "{{client}} on {{host}}")]),
]


def dashboard() -> dict[str, Any]:
    panels = []
    for i, (title, unit, targets) in enumerate(PANELS):
        panels.append({
            "id": i + 1, "type": "timeseries", "title": title, "datasource": DATASOURCE,
            "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
            "targets": [{"refId": chr(ord("A") + j), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
                        for j, (expr, legend) in enumerate(targets)]})
    return {"title": "buildkit-ops", "uid": "buildkit-ops", "tags": ["buildkit", "buildkit-ops"], "editable": True,
            "schemaVersion": 39, "time": {"from": "now-7d", "to": "now"}, "refresh": "5m",
            "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                                     "label": "Prometheus"}]},
            "panels": panels}


def dashboard_json() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"
