"""The Grafana dashboard shows every metric `status --prometheus` prints, is valid JSON of Grafana's shape
(panels with targets on a datasource variable), and docs/grafana-dashboard.json is exactly what the code makes."""
from __future__ import annotations

import json

from conftest import ROOT

from buildkit_ops.report import grafana, status_views


def test_every_metric_is_on_a_panel():
    exprs = " ".join(t["expr"] for p in grafana.dashboard()["panels"] for t in p["targets"])
    for name, _kind, _help in status_views.METRICS:
        assert name in exprs, name


def test_the_dashboard_has_grafanas_shape_and_the_shipped_file_is_current():
    d = json.loads((ROOT / "docs/grafana-dashboard.json").read_text())
    assert d == grafana.dashboard()
    assert d["templating"]["list"][0] == {"name": "datasource", "type": "datasource", "query": "prometheus",
                                          "label": "Prometheus"}
    for p in d["panels"]:
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"] and p["gridPos"]["w"] == 12
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])
