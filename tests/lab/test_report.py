"""bkops report on the lab's real data, looked at as a person would: the page names each host and the client
that built, and in headless Chromium every chart is drawn (not blank; the cache chart's three bars and each
line in its colour)."""
from __future__ import annotations

import pytest
from helpers import build, invoke
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
    img = screenshot(page, tmp_path / "report.png")
    assert ink(img) > 0.02
    assert colours_drawn(img) == charts.PALETTE[:3]
