"""bkops report on the lab's real data, looked at as a person would: the page names each host and the client
that built, and in headless Chromium every chart is drawn (not blank; the cache chart's three bars and each
line in its colour)."""
from __future__ import annotations

import re

import pytest
from helpers import LAB, build, invoke, invoke_json
from screenshots import colours_drawn, ink, screenshot

from buildkit_ops.report import charts

pytestmark = pytest.mark.lab


def test_the_report_of_the_lab_is_drawn(served, reg, tmp_path):
    r = build(served, "laptop", f"{reg['address']}/team/report:1")
    assert r.returncode == 0, r.stderr[-2000:]
    page = tmp_path / "report.html"
    r = invoke("report", "--since", "7d", "--out", str(page))
    assert r.returncode == 0, r.stderr
    html = page.read_text()
    assert "<h2>build1</h2>" in html and "<h2>build2</h2>" in html
    assert 'data-series="laptop"' in html and "<script" not in html
    # each host's four charts hold builds and failures, median and p95, the cached share, and three bars
    per_chart = [len(re.findall(r'class="series"', svg)) for svg in re.findall(r"<svg.*?</svg>", html)]
    assert per_chart[:8] == [2, 2, 1, 3, 2, 2, 1, 3], per_chart
    img = screenshot(page, tmp_path / "report.png")
    assert ink(img) > 0.02
    # drawn: every colour of those series is on the screen (the clients' chart may add more)
    assert set(charts.PALETTE[:3]) <= set(colours_drawn(img))


def test_the_reports_figures_are_the_status_figures_and_tables_print_whole_values(served, tmp_path):
    page = tmp_path / "report.html"
    assert invoke("report", "--since", "7d", "--out", str(page)).returncode == 0
    html = page.read_text()
    rc, st, err = invoke_json("status")
    for host in ("build1", "build2"):
        chart = re.search(rf"{host}: builds per day.*?data-series=\"builds\" data-values=\"([^\"]*)\"", html)
        assert chart, host
        assert sum(float(v) for v in chart.group(1).split(",") if v) == st["hosts"][host]["builds"]["7d"]["builds"]
    # in a pipe, every value whole (rich's 80 columns would cut them)
    out = invoke("list-clients").stdout
    assert re.search(rf"^laptop\s+{re.escape(LAB.address('laptop'))}\s+ssh\s+buildkit-ops\s+", out, re.M), out
    out = invoke("builds", "--since", "7d").stdout
    assert "…" not in out and re.search(r"^build1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+laptop\s", out, re.M), out
