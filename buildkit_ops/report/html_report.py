"""`bkops report`: one self-contained HTML page (no scripts, no fetches; charts as inline SVG) of the builds of a
window, per host and per client: builds and failures per day, median and p95 build time per day, the share of
cached steps per day, and each host's cache against its GC limit and its disk. Made from what `status` and
`builds` read (the build history, the gateway's audit trail, the cache and the disk)."""
from __future__ import annotations

import datetime as dt
import statistics
from html import escape
from typing import Any

from buildkit_ops.flows.status_tree import Status
from buildkit_ops.insights.builds import percentile
from buildkit_ops.report import charts

STYLE = ("body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{font-size:18px;margin-top:28px}"
         ".charts{display:flex;flex-wrap:wrap;gap:16px}.charts svg{border:1px solid #ddd;background:#fff}")


def _days(now: dt.datetime, days: int) -> list[dt.date]:
    return [(now - dt.timedelta(days=days - 1 - i)).date() for i in range(days)]


def _per_day(builds: list[dict[str, Any]], days: list[dt.date]) -> dict[dt.date, list[dict[str, Any]]]:
    out: dict[dt.date, list[dict[str, Any]]] = {d: [] for d in days}
    for b in builds:
        day = dt.datetime.fromisoformat(b["started"]).date()
        if day in out:
            out[day].append(b)
    return out


def host_charts(name: str, builds: list[dict[str, Any]], days: list[dt.date], cache: Any) -> list[str]:
    labels = [d.strftime("%m-%d") for d in days]
    by_day = _per_day(builds, days)
    done = {d: [b["seconds"] for b in bs if b["seconds"] is not None] for d, bs in by_day.items()}
    steps = {d: (sum(b["steps_cached"] for b in bs), sum(b["steps_total"] for b in bs)) for d, bs in by_day.items()}
    out = [charts.lines(f"{name}: builds per day", labels, {
               "builds": [float(len(by_day[d])) for d in days],
               "failed": [float(sum(1 for b in by_day[d] if b["result"] == "failed")) for d in days]}),
           charts.lines(f"{name}: build time", labels, {
               "median": [statistics.median(done[d]) if done[d] else None for d in days],
               "p95": [percentile(done[d], 95) if done[d] else None for d in days]}, "s"),
           charts.lines(f"{name}: share of cached steps", labels, {
               "cached steps": [steps[d][0] / steps[d][1] if steps[d][1] else None for d in days]}, "%")]
    if cache is not None:
        items = [("cache", float(cache.total))]
        if cache.gc_limit is not None:
            items.append(("GC limit", float(cache.gc_limit)))
        if cache.disk_size is not None:
            items.append(("disk", float(cache.disk_size)))
        out.append(charts.bars(f"{name}: cache, GC limit and disk", items, "B"))
    return out


def client_chart(builds: dict[str, list[dict[str, Any]]], days: list[dt.date]) -> str:
    labels = [d.strftime("%m-%d") for d in days]
    every = [b for bs in builds.values() for b in bs]
    clients = sorted({b["client"] or "unknown" for b in every})
    by_day = _per_day(every, days)
    return charts.lines("builds per day, per client (all hosts)", labels, {
        c: [float(sum(1 for b in by_day[d] if (b["client"] or "unknown") == c)) for d in days] for c in clients})


def page(st: Status, builds: dict[str, list[dict[str, Any]]], days: int, now: dt.datetime) -> str:
    span = _days(now, days)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>buildkit-ops report</title>"
             f"<style>{STYLE}</style></head><body><h1>buildkit-ops: the last {days} days</h1>"
             f"<p>Made {escape(now.isoformat(timespec='minutes'))} from the build history, the gateways' audit "
             f"trail and each host's cache and disk.</p>"]
    for name, h in st.hosts.items():
        parts.append(f"<h2>{escape(name)}</h2>")
        if not h.reachable:
            parts.append(f"<p>unreachable: {escape(h.error or '')}</p>")
            continue
        parts.append("<div class='charts'>" + "".join(host_charts(name, builds.get(name, []), span, h.cache)) +
                     "</div>")
    parts.append("<h2>Clients</h2><div class='charts'>" + client_chart(builds, span) + "</div></body></html>")
    return "".join(parts)
