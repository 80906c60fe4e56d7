"""The human form of the other tasks' reports: status, builds, clients, doctor's findings (on stderr, or the
tables on stdout)."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape

from buildkit_ops.report.results import err


def print_clients(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table
    t = Table("client", "address", "connection", "builder", "home", "cert expires", "status")
    for r in rows:
        home = (r["home"] or "-") + (" (pinned)" if r["pinned"] else "")
        t.add_row(r["name"], r["address"], r["connection"], r["builder"], home, r["cert_expires"] or "-", r["status"])
    Console(emoji=False).print(t)


def print_revocation_note(name: str, entry: dict[str, Any]) -> None:
    err.print(f"[yellow]note:[/yellow] buildkitd has no revocation list: {escape(name)}'s certificate stays valid "
              f"until it expires ({entry['not_after'][:10]}) or the CA is rotated. The firewall now blocks its "
              f"address; to make the certificate itself useless, run `invoke rotate-certs --ca`.")


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)


def print_status(doc: dict[str, Any]) -> None:
    if doc["ca"]:
        err.print(f"CA: expires {doc['ca']['expires'][:10]} ({doc['ca']['days_left']} days)")
    for name, h in doc["hosts"].items():
        if not h.get("reachable"):
            err.print(f"[red]{escape(name)}: unreachable[/red] {escape(h.get('error', ''))}")
            continue
        bk, sc, fw = h["buildkitd"], h.get("server_certificate") or {}, h["firewall"]
        err.print(f"[bold]{escape(name)}[/bold]: docker {h['docker']}, compose {h['compose']}, buildkitd "
                  f"{bk['state']} {bk['version'] or ''} ({bk['platforms']}), build steps on network: "
                  f"{bk['step_network']}")
        err.print(f"  cache {human_size(h['cache']['total'])} in {h['cache']['records']} records; server cert "
                  f"expires {sc.get('expires', '?')[:10]}, names {'match' if sc.get('names_match') else 'DIFFER'}; "
                  f"firewall {'active' if fw['active'] else 'INACTIVE'} "
                  f"({'IPv4 and IPv6' if fw['ipv6'] else 'IPv4 ONLY'}), allows {', '.join(fw['allowed']) or 'nobody'}; "
                  f"home of {len(h['home_of'])} client(s): {', '.join(h['home_of']) or '-'}")
        c = h["cache"]
        if c.get("disk_free") is not None:
            limit = human_size(c["gc_limit"]) if c.get("gc_limit") is not None else "none (GC off)"
            err.print(f"  cache {human_size(c['total'])} of a GC limit of {limit}; disk {human_size(c['disk_free'])} "
                      f"free of {human_size(c['disk_size'])}")
        for window, w in (h.get("builds") or {}).items():
            if not w["builds"]:
                err.print(f"  builds {window}: none")
                continue
            busiest = ", ".join(f"{escape(n)} {k}" for n, k in list(w["clients"].items())[:3])
            hits = f"{w['cache_hit_ratio'] * 100:.0f}%" if w["cache_hit_ratio"] is not None else "-"
            err.print(f"  builds {window}: {w['builds']} ({w['failed']} failed, {w['running']} running), median "
                      f"{w['median_seconds']} s, p95 {w['p95_seconds']} s, cached steps {hits}; by client: {busiest}")
    for cname, cl in doc["clients"].items():
        exp = cl["certificate"]["expires"][:10] if cl["certificate"] else "-"
        err.print(f"client {escape(cname)} ({cl['address']}): certificate expires {exp}, {escape(cl['status'])}")
    for w in doc["warnings"]:
        err.print(f"[yellow]warning:[/yellow] {escape(w)}")
    for w in doc["failures"]:
        err.print(f"[bold red]failed:[/bold red] {escape(w)}")


def print_findings(findings: list[tuple[str, str, str]]) -> None:
    out = Console(highlight=False, soft_wrap=True, emoji=False)
    for host, verdict, line in findings:
        style = "green" if verdict == "ok" else "red"
        out.print(f"[{style}]{escape(host)}[/{style}]: {escape(line)}")


def print_builds(doc: dict[str, Any]) -> None:
    from rich.table import Table
    t = Table()
    for column in ("host", "started", "client", "image, target or ref", "seconds", "cached/steps", "result"):
        t.add_column(column, no_wrap=True)
    for host, h in doc.items():
        if "error" in h:
            err.print(f"[red]{escape(host)}: {escape(h['error'])}[/red]")
            continue
        for b in h["builds"]:
            # image and target come from clients: escaped, never markup
            what = b["image"] or b["target"] or b["ref"][:12]
            t.add_row(escape(host), b["started"][:19].replace("T", " "), escape(b["client"] or "unknown"),
                      escape(what), "-" if b["seconds"] is None else f"{b['seconds']:.2f}",
                      f"{b['steps_cached']}/{b['steps_total']}", b["result"])
    Console(highlight=False, soft_wrap=True, emoji=False).print(t)
