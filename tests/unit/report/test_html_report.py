"""The report page: self-contained (no script, no fetch), one chart per figure with one series per line, every
name escaped; and, rendered in headless Chromium, drawn: not blank, each series' colour on the screen."""
from __future__ import annotations

import datetime as dt
import re

from screenshots import colours_drawn, ink, screenshot

from buildkit_ops.flows.status_tree import Cache, HostStatus, Status
from buildkit_ops.report import charts, html_report

NOW = dt.datetime(2026, 12, 1, 20, 0, tzinfo=dt.timezone.utc)


def page() -> str:
    st = Status()
    st.hosts["build1"] = HostStatus(True, [], cache=Cache(10, 3 * 10**9, 0, 50 * 10**9, 20 * 10**9, 10 * 10**9))
    st.hosts["build2"] = HostStatus(False, [], error="unreachable: timed out")
    builds = {"build1": [{"started": (NOW - dt.timedelta(days=d, hours=h)).isoformat(), "seconds": 10.0 + d + h,
                          "steps_cached": h, "steps_total": 5, "result": "failed" if h == 0 else "ok",
                          "client": ["laptop", "<b>evil</b>"][h % 2]} for d in range(7) for h in range(4)]}
    return html_report.page(st, builds, 7, NOW)


def test_the_page_is_self_contained_and_escapes_every_name():
    html = page()
    assert "<script" not in html and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html and "<b>evil</b>" not in html and "&lt;b&gt;evil&lt;/b&gt;" in html
    charts_ = re.findall(r"<svg.*?</svg>", html)
    assert [len(re.findall(r'class="series"', c)) for c in charts_] == [2, 2, 1, 3, 2]   # build1's four, clients
    assert "build2</h2><p>unreachable: unreachable: timed out" in html


def test_the_page_is_drawn_in_a_browser(tmp_path):
    (tmp_path / "report.html").write_text(page())
    img = screenshot(tmp_path / "report.html", tmp_path / "report.png", height=1400)
    assert ink(img) > 0.02                                # not blank
    assert colours_drawn(img) == charts.PALETTE[:3]       # the most series of one chart: three, each on screen
