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
