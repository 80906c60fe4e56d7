"""Build insights: BuildKit's history records parsed, each build given to the client whose connections spanned it,
and the figures of a window."""
from __future__ import annotations

import datetime as dt
import json

from buildkit_ops.insights import builds as insights

T0 = dt.datetime(2026, 11, 26, 1, 0, tzinfo=dt.timezone.utc)


def record(ref, start, seconds, cached, total, code=0, image="", target=""):
    # as Go prints them: nanoseconds, Z
    created = f"{T0 + dt.timedelta(seconds=start):%Y-%m-%dT%H:%M:%S}.123456789Z"
    completed = None if seconds is None else f"{T0 + dt.timedelta(seconds=start + seconds):%Y-%m-%dT%H:%M:%S}Z"
    return json.dumps([ref, created, completed, cached, total, code, image, target])


HISTORY = "\n".join([
    record("a", 0, 2.0, 2, 2),                 # laptop, fully cached
    record("b", 10, 4.0, 1, 4, image="reg/app:1"),   # laptop2
    record("c", 20, 1.0, 0, 3, code=2),        # laptop, failed
    record("d", -3 * 86400, 8.0, 0, 2),        # three days ago, nobody known
    record("e", 30, None, 0, 5),               # running
    "not a record", '["x", null, null, 0, 0, 0, "", ""]',
])


CONNECTIONS = "\n".join([
    f"10.77.0.21 {T0.timestamp() - 0.5} {T0.timestamp() + 2.1} 9000",
    f"10.77.0.22 {T0.timestamp() + 9.9} {T0.timestamp() + 14.2} 12000",
    f"10.77.0.21 {T0.timestamp() + 19.8} {T0.timestamp() + 21.1} 5000",
    f"10.77.0.21 {T0.timestamp() + 10.5} {T0.timestamp() + 10.6} 1600",   # short: spans no build
    "garbage line",
])


CLIENTS = {"laptop": "10.77.0.21", "laptop2": "10.77.0.22", "office": "10.0.0.0/8"}


def builds():
    bs = insights.parse(HISTORY)
    insights.attribute(bs, insights.parse_connections(CONNECTIONS), CLIENTS)
    return bs


def test_records_parse_and_each_build_goes_to_the_client_whose_connection_spans_it():
    bs = builds()
    assert [(b.ref, b.client) for b in bs] == [("d", None), ("a", "laptop"), ("b", "laptop2"), ("c", "laptop"),
                                               ("e", None)]
    assert bs[1].created.microsecond == 123456 and bs[2].image == "reg/app:1"


def test_windows_count_time_and_cache_hits():
    now = T0 + dt.timedelta(minutes=5)
    s = insights.summary(builds(), now)
    day = s["24h"]
    assert (day.builds, day.failed, day.running) == (4, 1, 1)
    assert day.median_seconds == 1.877 and day.p95_seconds == 3.877   # (the starts are .123456 s late)
    assert day.cache_hit_ratio == round(3 / 14, 3)
    assert day.clients == {"laptop": 2, "laptop2": 1, "unknown": 1}
    assert s["7d"].builds == 5 and s["7d"].clients["unknown"] == 2


def test_an_empty_history_has_no_figures():
    assert insights.window([], dt.timedelta(days=1), T0) == insights.Window(0, 0, 0, None, None, None, {})


def test_a_stray_connection_of_another_client_does_not_take_a_build():
    b = insights.parse(record("z", 100, 0.2, 1, 2))
    t = T0.timestamp() + 100
    conns = insights.parse_connections("\n".join(
        [f"10.77.0.22 {t - 0.3 + i * 0.01} {t + 0.4} " for i in range(4)]   # laptop2's four buildx connections
        + [f"10.77.0.21 {t - 0.05} {t + 0.25}"]))                          # laptop's slow health check
    insights.attribute(b, conns, CLIENTS)
    assert b[0].client == "laptop2"
