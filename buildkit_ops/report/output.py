"""Human output on stderr (colour only on a terminal), JSON on stdout for scripts."""
from __future__ import annotations

import json
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.markup import escape

err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
_lock = threading.Lock()

STYLE = {"ok": "green", "changed": "yellow", "failed": "bold red", "skipped": "dim", "would change": "yellow"}


@dataclass
class HostResult:
    host: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    unreachable: bool = False
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        c = {"ok": 0, "changed": 0, "failed": 0, "skipped": 0}
        for s in self.steps:
            c["changed" if s["status"] in ("changed", "would change") else s["status"]] += 1
        if self.error and not any(s["status"] == "failed" for s in self.steps):
            c["failed"] += 1
        return c

    @property
    def failed(self) -> bool:
        return self.error is not None


class Reporter:
    def __init__(self, quiet: bool = False):
        self.quiet = quiet

    def step(self, result: HostResult, role: str, name: str, status: str, detail: str = "") -> None:
        result.steps.append({"role": role, "name": name, "status": status, "detail": detail})
        if self.quiet:
            return
        with _lock:
            style = STYLE.get(status, "")
            d = f"  [dim]{escape(detail)}[/dim]" if detail else ""
            err.print(f"{escape(result.host):10} [{style}]{status:12}[/{style}] {escape(role)}: {escape(name)}{d}")

    def text(self, text: str) -> None:
        if self.quiet:
            return
        with _lock:
            err.print(escape(text), soft_wrap=True)

    def fail(self, result: HostResult, message: str, unreachable: bool = False) -> None:
        result.error = message
        result.unreachable = unreachable
        with _lock:
            err.print(f"{escape(result.host):10} [bold red]{'unreachable' if unreachable else 'failed':12}[/bold red] "
                      f"{escape(message)}")

    def recap(self, results: list[HostResult], check: bool = False) -> None:
        with _lock:
            err.print(f"\n[bold]RECAP{' (check mode: nothing was changed)' if check else ''}[/bold]")
            for r in results:
                c = r.counts
                changed_word = "would_change" if check else "changed"
                line = (f"{r.host:10} : ok={c['ok']} {changed_word}={c['changed']} "
                        f"unreachable={int(r.unreachable)} failed={c['failed']}"
                        + (f" skipped={c['skipped']}" if c["skipped"] else ""))
                style = "red" if r.failed else ("yellow" if c["changed"] else "green")
                verdict = "" if r.failed or c["changed"] else "  no changes"
                err.print(f"[{style}]{escape(line)}[/{style}]{verdict}")


def emit_json(results: list[HostResult], **extra: Any) -> None:
    doc = {"hosts": {r.host: {**r.counts, "unreachable": r.unreachable, "error": r.error, "steps": r.steps,
                              **r.info} for r in results},
           "changed": any(r.counts["changed"] for r in results),
           "failed": any(r.failed for r in results), **extra}
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()


# ------------------------------------------------------------------ reports of the other tasks

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


def prometheus(doc: dict[str, Any]) -> str:
    """status as Prometheus text format, for node_exporter's textfile collector."""
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    lines: list[str] = []
    metrics = [("buildkit_ops_up", "gauge", "1 when the host answered"),
               ("buildkit_ops_cache_bytes", "gauge", "BuildKit cache size"),
               ("buildkit_ops_gc_limit_bytes", "gauge", "the most the cache keeps before the GC frees it"),
               ("buildkit_ops_disk_free_bytes", "gauge", "free space on the cache's filesystem"),
               ("buildkit_ops_builds", "gauge", "builds started in the window"),
               ("buildkit_ops_builds_failed", "gauge", "failed builds started in the window"),
               ("buildkit_ops_build_seconds", "gauge", "build duration quantile in the window"),
               ("buildkit_ops_cache_hit_ratio", "gauge", "cached steps / all steps in the window"),
               ("buildkit_ops_client_builds", "gauge", "builds per client in the window")]
    samples: dict[str, list[str]] = {m: [] for m, _, _ in metrics}
    for host, h in doc["hosts"].items():
        hl = f'host="{esc(host)}"'
        samples["buildkit_ops_up"].append(f"{{{hl}}} {1 if h.get('reachable') else 0}")
        if not h.get("reachable"):
            continue
        c = h["cache"]
        samples["buildkit_ops_cache_bytes"].append(f"{{{hl}}} {c['total']}")
        for key, metric in (("gc_limit", "buildkit_ops_gc_limit_bytes"), ("disk_free", "buildkit_ops_disk_free_bytes")):
            if c.get(key) is not None:
                samples[metric].append(f"{{{hl}}} {c[key]}")
        for window, w in (h.get("builds") or {}).items():
            wl = f'{hl},window="{window}"'
            samples["buildkit_ops_builds"].append(f"{{{wl}}} {w['builds']}")
            samples["buildkit_ops_builds_failed"].append(f"{{{wl}}} {w['failed']}")
            for q, key in (("0.5", "median_seconds"), ("0.95", "p95_seconds")):
                if w[key] is not None:
                    samples["buildkit_ops_build_seconds"].append(f'{{{wl},quantile="{q}"}} {w[key]}')
            if w["cache_hit_ratio"] is not None:
                samples["buildkit_ops_cache_hit_ratio"].append(f"{{{wl}}} {w['cache_hit_ratio']}")
            for client, n in w["clients"].items():
                samples["buildkit_ops_client_builds"].append(f'{{{wl},client="{esc(client)}"}} {n}')
    for name, kind, help_ in metrics:
        lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"] + [name + s for s in samples[name]]
    return "\n".join(lines) + "\n"
