"""The human form of the other tasks' reports: status, builds, clients, doctor's findings (on stderr, or the
tables on stdout)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Console

from buildkit_ops.inventory.model import DEFAULT_TENANT
from buildkit_ops.report.columns import print_table
from buildkit_ops.report.results import err, shown


def _tenants_shown(rows: list[dict[str, Any]]) -> bool:
    """A tenant column only where there are tenants (an inventory without them prints what it always did)."""
    return any(r.get("tenant") not in (None, DEFAULT_TENANT) for r in rows)


def print_clients(rows: list[dict[str, Any]]) -> None:
    t = _tenants_shown(rows)
    print_table(("client", *(("tenant",) if t else ()), "address", "connection", "builder", "home", "cert expires",
                 "live certs", "status"),
                [[r["name"], *([r["tenant"] or "-"] if t else []), r["address"], r["connection"], r["builder"],
                  (r["home"] or "-") + (" (pinned)" if r["pinned"] else ""), r["cert_expires"] or "-",
                  str(r["live_certs"]), r["status"]]
                 for r in rows])


def print_revocation_note(name: str, entries: list[dict[str, Any]]) -> None:
    last = max(e["not_after"] for e in entries)[:10]
    what = (f"certificate (valid until {last}) is" if len(entries) == 1 else
            f"{len(entries)} certificates (every one issued to it and unexpired, the last valid until {last}) are")
    err.print(f"[yellow]note:[/yellow] {shown(name)}'s {what} on "
              f"the CRL: every build host's gateway refuses it from any address, and the firewall blocks its "
              f"address. A host that was unreachable gets the CRL at its next `invoke provision`.")


def human_size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f}{unit}" if unit == "B" else f"{n:.1f}{unit}"
        n /= 1000
    return str(n)


def print_findings(findings: list[tuple[str, str, str]]) -> None:
    out = Console(highlight=False, soft_wrap=True, emoji=False)
    for host, verdict, line in findings:
        style = "green" if verdict == "ok" else "red"
        out.print(f"[{style}]{shown(host)}[/{style}]: {shown(line)}")


def print_per_host(doc: dict[str, Any], key: str, columns: tuple[str, ...],
                   row: Callable[[dict[str, Any]], list[str]]) -> None:
    """One table of every host's `key` rows (a host's error said in red instead); `row` gives raw values (from
    hosts and clients: print_table escapes them). With tenants, each row says whose daemon it is."""
    rows, items = [], []
    for host, h in doc.items():
        if "error" in h:
            err.print(f"[red]{shown(host)}: {shown(h['error'])}[/red]")
            continue
        items += [(host, item) for item in h[key]]
    t = _tenants_shown([item for _h, item in items])
    rows = [[host, *([item["tenant"]] if t else []), *row(item)] for host, item in items]
    print_table(("host", *(("tenant",) if t else ()), *columns), rows)


def print_audit(doc: dict[str, Any]) -> None:
    print_per_host(doc, "calls", ("ended", "client", "role", "method", "result", "ms", "waited ms", "bytes in",
                                  "bytes out"),
                   lambda a: [a["ended"][:23].replace("T", " "), a["client"], a["role"], a["method"], a["result"],
                              str(a["ms"]), str(a.get("waited_ms", 0)), str(a["bytes_in"]), str(a["bytes_out"])])


def print_builds(doc: dict[str, Any]) -> None:
    print_per_host(doc, "builds", ("started", "client", "image, target or ref", "seconds", "cached/steps", "result"),
                   lambda b: [b["started"][:19].replace("T", " "), (b["client"] or "unknown")
                              + (f" (away from {b['away_from']})" if b.get("away_from") else ""),
                              b["image"] or b["target"] or b["ref"][:12],
                              "-" if b["seconds"] is None else f"{b['seconds']:.2f}",
                              f"{b['steps_cached']}/{b['steps_total']}", b["result"]])
