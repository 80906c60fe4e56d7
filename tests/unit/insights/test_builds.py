"""Build insights: BuildKit's history records parsed, each build given to the client whose Solve call carried it
(the gateway's audit trail), and the figures of a window."""
from __future__ import annotations

import datetime as dt
import json

from buildkit_ops.insights import builds as insights
from buildkit_ops.roles.gateway.exports import parse_audit

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


def solve(client, start, seconds, waited_ms=0, method="/moby.buildkit.v1.Control/Solve"):
    """An audit line as `docker logs --timestamps` prints it: written when the call ended."""
    began = T0 + dt.timedelta(seconds=start)
    ended = began + dt.timedelta(seconds=seconds)
    return (f"{ended:%Y-%m-%dT%H:%M:%S.%f}123Z {began:%d/%b/%Y:%H:%M:%S}.{began.microsecond // 1000:03d} "
            f'client={client} role=developer method="{method}" result=ok status=200 ms={int(seconds * 1000)} '
            f"in=300 out=90 term=-- waited={waited_ms if waited_ms else '-'}")


AUDIT = "\n".join([
    solve("laptop", 0.1, 2.05),
    solve("laptop2", 10.1, 4.05),
    solve("laptop", 19.0, 2.2, waited_ms=1100),   # waited 1.1 s for laptop's build limit, then ran
    solve("laptop2", 18.5, 3.0, method="/moby.buildkit.v1.Control/Status"),   # (not a Solve)
    "garbage line",
])


def builds():
    bs = insights.parse(HISTORY)
    insights.attribute(bs, parse_audit(AUDIT))
    return bs


def test_records_parse_and_each_build_goes_to_the_client_whose_solve_call_carried_it():
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


def test_of_overlapping_calls_the_one_that_reached_buildkitd_last_before_the_record_takes_it():
    # laptop's long build runs; laptop2's starts at 100.1 s (its record stamped 100.123456 s), two clients
    # behind one address told apart by their certificates; laptop's call that waited until 100.2 s takes none
    b = insights.parse(record("z", 100, 0.2, 1, 2))
    insights.attribute(b, parse_audit("\n".join([solve("laptop", 90.0, 30.0), solve("laptop2", 100.1, 0.5),
                                                  solve("laptop", 99.0, 5.0, waited_ms=1200)])))
    assert b[0].client == "laptop2"


def test_a_build_whose_call_is_not_in_the_trail_has_no_client():
    b = insights.parse(record("z", 100, 0.2, 1, 2))
    insights.attribute(b, parse_audit(solve("laptop", 100.2, 0.1)))   # (began after the record was stamped)
    assert b[0].client is None


def test_the_gateways_ownership_names_each_build_by_its_ref_also_while_it_runs():
    """A gateway that checks ownership logs a Solve's ref when it starts and when it ends: the ref names the
    client, whatever the timing says (here laptop's call spans laptop2's record and would take it by time)."""
    log = "\n".join([
        "2026-11-26T01:00:30.200000000Z solve started client=laptop2 ref=e session=s3",       # running: no end line yet
        solve("laptop", 0.1, 2.05) + " ref=a session=s1",
        solve("laptop", 9.0, 9.0) + " ref=x session=s1",                          # (a Solve over b's start)
        "2026-11-26T01:00:10.050000000Z solve started client=laptop2 ref=b",
        solve("laptop2", 10.1, 4.05) + " ref=b session=s2",
        solve("laptop2", 10.2, 1.0, method="/moby.buildkit.v1.Control/Status") + " ref=c session=-"])
    owners = insights_owners(log)
    assert owners == {"e": "laptop2", "a": "laptop", "x": "laptop", "b": "laptop2"}
    bs = insights.parse(HISTORY)
    insights.attribute(bs, parse_audit(log), owners)
    assert [(b.ref, b.client) for b in bs] == [("d", None), ("a", "laptop"), ("b", "laptop2"), ("c", None),
                                               ("e", "laptop2")]
    assert [c.ref for c in parse_audit(log)] == ["a", "x", "b", "c"]


def insights_owners(log: str) -> dict[str, str]:
    from buildkit_ops.roles.gateway.exports import build_owners
    return build_owners(log)
