"""status in its three views: for people (stderr), as JSON (stdout, for scripts) and in Prometheus text format
(for node_exporter's textfile collector). One tree (flows/status_tree.py), read by attribute."""
from __future__ import annotations

import json

from buildkit_ops.flows.status_tree import Revocations, Status
from buildkit_ops.report.results import err, shown
from buildkit_ops.report.tables import human_size


def as_json(st: Status) -> str:
    return json.dumps(st.as_json(), indent=2)


def crl_note(crl: Revocations | None) -> str:
    if crl is None:
        return ""
    return f"; CRL #{crl.number} signed {(crl.signed or '?')[:16]}" + ("" if crl.current else " (OUTDATED)")


def human(st: Status) -> None:
    if st.ca:
        err.print(f"CA: expires {st.ca.expires[:10]} ({st.ca.days_left} days)")
    for name, h in st.hosts.items():
        if not h.reachable or h.buildkitd is None or h.cache is None or h.firewall is None:
            err.print(f"[red]{shown(name)}: unreachable[/red] {shown(h.error or '')}")
            continue
        bk, sc, fw, c = h.buildkitd, h.server_certificate, h.firewall, h.cache
        err.print(f"[bold]{shown(name)}[/bold]: docker {h.docker}, compose {h.compose}, buildkitd "
                  f"{bk.state} {bk.version or ''} ({bk.platforms}), build steps on network: {bk.step_network}"
                  f"{', fence DOWN' if bk.fence_missing else ', fenced' if bk.step_network == 'cni' else ''}"
                  f"{', image ' + bk.image_digest[:19] if bk.image_digest else ''}{crl_note(h.crl)}")
        err.print(f"  cache {human_size(c.total)} in {c.records} records; server cert "
                  f"expires {sc.expires[:10] if sc else '?'}, names {'match' if sc and sc.names_match else 'DIFFER'}; "
                  f"firewall {'active' if fw.active else 'INACTIVE'} "
                  f"({'IPv4 and IPv6' if fw.ipv6 else 'IPv4 ONLY'}), allows {', '.join(fw.allowed) or 'nobody'}; "
                  f"home of {len(h.home_of)} client(s): {', '.join(h.home_of) or '-'}")
        if c.disk_free is not None and c.disk_size is not None:
            limit = human_size(c.gc_limit) if c.gc_limit is not None else "none (GC off)"
            err.print(f"  cache {human_size(c.total)} of a GC limit of {limit}; disk {human_size(c.disk_free)} "
                      f"free of {human_size(c.disk_size)}")
        for tname, t in h.tenants.items():
            limit = human_size(t.cache.gc_limit) if t.cache.gc_limit is not None else "none (GC off)"
            day = t.builds.get("24h")
            err.print(f"  tenant {shown(tname)}: buildkitd {t.state}{', fence DOWN' if t.fence_missing else ''}, cache "
                      f"{human_size(t.cache.total)} in {t.cache.records} records of a GC limit of {limit}; builds "
                      f"24h: {day.builds if day else 0}")
        if h.ci_issuer is not None:
            err.print(f"  ci issuer: {shown(h.ci_issuer)}")
        if h.vpn is not None:
            v = h.vpn
            err.print(f"  vpn: tunnel {'up' if v.up else 'DOWN'} {v.address or '?'} UDP {v.port or '?'}, "
                      f"{len(v.peers)} peer(s)")
            for p in v.peers:
                age = f"{p.handshake_age} s ago" if p.handshake_age is not None else "never"
                err.print(f"    {shown(p.client or 'UNKNOWN ' + p.public_key)}: handshake {age}, from "
                          f"{shown(p.endpoint or '-')}, {human_size(p.received)} in, {human_size(p.sent)} out")
        for tname in h.stale_tenants:
            err.print(f"  [yellow]tenant {shown(tname)}: not placed here any more, daemon and cache kept[/yellow]")
        for window, w in h.builds.items():
            if not w.builds:
                err.print(f"  builds {window}: none")
                continue
            busiest = ", ".join(f"{shown(n)} {k}" for n, k in list(w.clients.items())[:3])
            hits = f"{w.cache_hit_ratio * 100:.0f}%" if w.cache_hit_ratio is not None else "-"
            err.print(f"  builds {window}: {w.builds} ({w.failed} failed, {w.running} running), median "
                      f"{w.median_seconds} s, p95 {w.p95_seconds} s, cached steps {hits}; by client: {busiest}")
    for cname, cl in st.clients.items():
        exp = cl.certificate.expires[:10] if cl.certificate else "-"
        err.print(f"client {shown(cname)} ({cl.address}): certificate expires {exp}, {shown(cl.status)}")
    for line in st.warnings:
        err.print(f"[yellow]warning:[/yellow] {shown(line)}")
    for line in st.failures:
        err.print(f"[bold red]failed:[/bold red] {shown(line)}")


METRICS = [("buildkit_ops_up", "gauge", "1 when the host answered"),
           ("buildkit_ops_cache_bytes", "gauge", "BuildKit cache size"),
           ("buildkit_ops_gc_limit_bytes", "gauge", "the most the cache keeps before the GC frees it"),
           ("buildkit_ops_disk_free_bytes", "gauge", "free space on the cache's filesystem"),
           ("buildkit_ops_builds", "gauge", "builds started in the window"),
           ("buildkit_ops_builds_failed", "gauge", "failed builds started in the window"),
           ("buildkit_ops_build_seconds", "gauge", "build duration quantile in the window"),
           ("buildkit_ops_cache_hit_ratio", "gauge", "cached steps / all steps in the window"),
           ("buildkit_ops_client_builds", "gauge", "builds per client in the window")]


def _label(v: str) -> str:
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(st: Status) -> str:
    samples: dict[str, list[str]] = {m: [] for m, _, _ in METRICS}
    for host, h in st.hosts.items():
        hl = f'host="{_label(host)}"'
        samples["buildkit_ops_up"].append(f"{{{hl}}} {1 if h.reachable else 0}")
        if not h.reachable or h.cache is None:
            continue
        c = h.cache
        samples["buildkit_ops_cache_bytes"].append(f"{{{hl}}} {c.total}")
        for tname, t in h.tenants.items():   # (a tenant's own cache, beside the fleet daemon's)
            samples["buildkit_ops_cache_bytes"].append(f'{{{hl},tenant="{_label(tname)}"}} {t.cache.total}')
            if t.cache.gc_limit is not None:
                samples["buildkit_ops_gc_limit_bytes"].append(f'{{{hl},tenant="{_label(tname)}"}} {t.cache.gc_limit}')
        if c.gc_limit is not None:
            samples["buildkit_ops_gc_limit_bytes"].append(f"{{{hl}}} {c.gc_limit}")
        if c.disk_free is not None:
            samples["buildkit_ops_disk_free_bytes"].append(f"{{{hl}}} {c.disk_free}")
        for window, w in h.builds.items():
            wl = f'{hl},window="{window}"'
            samples["buildkit_ops_builds"].append(f"{{{wl}}} {w.builds}")
            samples["buildkit_ops_builds_failed"].append(f"{{{wl}}} {w.failed}")
            for q, value in (("0.5", w.median_seconds), ("0.95", w.p95_seconds)):
                if value is not None:
                    samples["buildkit_ops_build_seconds"].append(f'{{{wl},quantile="{q}"}} {value}')
            if w.cache_hit_ratio is not None:
                samples["buildkit_ops_cache_hit_ratio"].append(f"{{{wl}}} {w.cache_hit_ratio}")
            for client, n in w.clients.items():
                samples["buildkit_ops_client_builds"].append(f'{{{wl},client="{_label(client)}"}} {n}')
    lines: list[str] = []
    for name, kind, help_ in METRICS:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"] + [name + s for s in samples[name]]
    return "\n".join(lines) + "\n"
