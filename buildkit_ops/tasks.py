"""buildkit-ops' tasks: turn fresh VMs into shared, mutual-TLS BuildKit servers and manage their clients.

Each task parses its arguments, runs one flow, and prints one result. The installed command `bkops` runs
these; in a checkout, `invoke` runs them with the lab's tasks beside them (tasks.py at the top).
`bkops --list`, `bkops TASK --help`.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke.collection import Collection
from invoke.context import Context
from invoke.exceptions import Exit

from buildkit_ops import ci_tasks, flows
from buildkit_ops.cli import INV_HELP, cli_errors, fail, passphrase, task
from buildkit_ops.engine import role_path
from buildkit_ops.engine.contract import Options
from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.inventory import DEFAULT_INVENTORY, BuildHost, Inventory, load, values
from buildkit_ops.inventory.model import DEFAULT_TENANT
from buildkit_ops.pki import client_records
from buildkit_ops.report import html_report, status_views
from buildkit_ops.report.results import Reporter, emit_json
from buildkit_ops.report.tables import print_audit, print_builds, print_clients, print_findings, print_revocation_note

HOST_HELP = "build host(s): a name, a comma-separated list, a group, or 'all' (default)"


def _port(value: str | None) -> int | None:
    if value is not None and not str(value).isdigit():
        fail(f"--ssh-port: {value!r} is not a port\n  fix: give a number such as 22", 2)
    return int(value) if value is not None else None


@task(help={"host": HOST_HELP, "check": "show what would change (diffs and commands) and change nothing",
            "json": "print the per-host result as JSON on stdout",
            "wait": "before restarting buildkitd, wait this many seconds for running builds (default 300)",
            "force": "restart even if builds are still running after --wait",
            "prune_clients": "close the firewall for addresses of clients no longer in the inventory, and rules "
                             "of others that open the BuildKit port",
            "lock_wait": "wait this many seconds for another run's lock on a host (default 120), then stop there",
            "roles": "apply only these roles, comma-separated (e.g. firewall,gateway, or one daemon: buildkitd[red]); "
                     "what the others would change is reported as pending",
            "inventory": INV_HELP})
@cli_errors
def provision(c: Context, host: str | None = None, check: bool = False, json_: bool = False, wait: int = 300,
              force: bool = False, prune_clients: bool = False, lock_wait: int = 120, roles: str | None = None,
              inventory: str = DEFAULT_INVENTORY) -> None:
    """Make build host(s) a mutual-TLS BuildKit server: engine, PKI, config, firewall, service."""
    inv = load(inventory)
    hosts = inv.select(host)
    only = None if roles is None else run_roles(inv, roles)
    inv.check_files(hosts)
    rep = Reporter(progress=not json_)
    results = flows.provision.provision(inv, hosts, Options(check, int(wait), force, prune_clients,
                                                             lock_wait=int(lock_wait), roles=only), rep)
    rep.recap(results, check)
    if json_:
        emit_json(results, check=check)
    if any(r.failed for r in results):
        raise Exit(code=1)


def run_roles(inv: Inventory, text: str) -> frozenset[str]:
    """--roles: names of the build hosts' roles, or one instance of one (buildkitd[red]); anything else refused."""
    known = [r.name for r in role_path.load(inv.file.parent, "host")]
    out = set()
    for part in (p.strip() for p in text.split(",")):
        m = re.fullmatch(r"([a-z][a-z0-9_]*)(?:\[([a-z0-9][a-z0-9-]*)\])?", part)
        if not m or m.group(1) not in known:
            fail(f"--roles: {part!r} is not a role of the build hosts\n  fix: name some of {', '.join(known)}, or "
                 f"one instance of one as buildkitd[TENANT]", 2)
        out.add(part)
    return frozenset(out)


@task(help={"name": "client name: its certificate's CN and its key in the inventory",
            "address": "address the build hosts see the client's connections come from (needed when NAME is new; "
                       "a new one for a known client moves it)",
            "connection": "how to reach the client machine: 'ssh' (default), 'local' (this machine) or 'none' (a CI "
                          "runner: its secrets and CI snippets are written to a 0600 folder, never printed)",
            "json": "print the result as JSON on stdout (for a CI runner: where its secrets and snippets are)",
            "ssh_address": "address SSH connects to, if not --address", "ssh_user": "SSH user on the client "
            "(default root)", "ssh_port": "SSH port on the client (default 22)",
            "ssh_key": "private key for SSH to the client", "known_hosts": "known_hosts file holding the client's "
            "host key", "builder": "name of the buildx builder created there (default buildkit-ops)",
            "default": "make it the client's default builder",
            "home": "pin this build host as the client's home (default: placement decides)",
            "tenant": "the tenant whose own buildkitd serves the client; for a known client, moves it there (its "
                      "builds then see only that tenant's cache)",
            "check": "show what would change (the inventory, the certificate, each host's firewall, the client "
                     "machine's builder) and change nothing",
            "inventory": INV_HELP}, auto_shortflags=False)
@cli_errors
def add_client(c: Context, name: str, address: str | None = None, connection: str | None = None,
               ssh_address: str | None = None, ssh_user: str | None = None, ssh_port: str | None = None,
               ssh_key: str | None = None, known_hosts: str | None = None, builder: str | None = None,
               default: bool = False, home: str | None = None, tenant: str | None = None, check: bool = False,
               json_: bool = False, inventory: str = DEFAULT_INVENTORY) -> None:
    """Issue a client certificate, open the firewall for it, and set up its buildx builder (or, for a CI runner,
    write its secrets and CI snippets). For a known client: move it (--address, --home, --tenant)."""
    req = flows.clients.ClientRequest(name, address, connection, ssh_address, ssh_user, _port(ssh_port), ssh_key,
                                     known_hosts, builder, default, home, tenant)
    rep = Reporter()
    result = flows.clients.add_client(Path(inventory), req, rep, check)
    rep.recap([result], check)
    if json_:
        emit_json([result], check=check)
    if result.failed:
        raise Exit(code=1)


@task(help={"name": "client to remove", "inventory": INV_HELP})
@cli_errors
def remove_client(c: Context, name: str, inventory: str = DEFAULT_INVENTORY) -> None:
    """Close the firewall for a client, remove its builder, and record its certificate as revoked."""
    rep = Reporter()
    res, revoked = flows.clients.remove_client(Path(inventory), name, rep)
    rep.recap([res])
    if revoked:
        print_revocation_note(name, revoked)


@task(help={"check": "show which builders would change and change nothing", "json": "print the result as JSON",
            "inventory": INV_HELP})
@cli_errors
def update_clients(c: Context, check: bool = False, json_: bool = False, inventory: str = DEFAULT_INVENTORY) -> None:
    """Bring every reachable client's builder to the current fleet (home host first, then the others)."""
    rep = Reporter()
    results = flows.clients.update_clients(Path(inventory), check, rep)
    rep.recap(results, check)
    if json_:
        emit_json(results, check=check)
    if any(r.failed for r in results):
        raise Exit(code=1)


@task(help={"json": "print the clients as JSON",
            "all": "also a row per removal (the revoked certificates on the CRL), oldest first",
            "inventory": INV_HELP})
@cli_errors
def list_clients(c: Context, json_: bool = False, all_: bool = False, inventory: str = DEFAULT_INVENTORY) -> None:
    """List clients: address, connection, home, certificate expiry and status (`--all`: removed ones too)."""
    inv = load(inventory)
    rows = client_records.client_rows(inv, removed=all_)
    if json_:
        print(json.dumps(rows, indent=2))
        return
    print_clients(rows)
    if not all_:
        removals = len({(r["name"], r["revoked_at"]) for r in client_records.revoked(inv)})
        if removals:
            print(f"({removals} removal{'s' * (removals > 1)} not shown: `invoke list-clients --all`)",
                  file=sys.stderr)


@task(help={"host": "reissue the server certificates of these hosts (default: all, unless --client is given)",
            "client": "reissue these clients' certificates, comma-separated (default: all, unless --host is given)",
            "ca": "rotate the CA itself, with an overlap window; re-run to resume after an interruption",
            "wait": "before restarting buildkitd, wait this many seconds for running builds (default 600)",
            "force": "restart even if builds still run after --wait; with --ca, strand unreachable clients",
            "ci_updated": "with --ca: the CI runners' secrets were updated after the pause, finish the rotation",
            "revoke_old": "with --client (a key suspected stolen): revoke every earlier certificate of those clients "
                          "on every host in the same run",
            "vpn_keys": "new WireGuard key pairs instead of certificates: of the --host hosts or of the --client "
                        "clients (one of the two), made on each machine; the other side learns them in the same run",
            "ci_issuer": "new intermediates for the CI trusts (the old ones revoked at once: running CI jobs log in "
                         "again)",
            "inventory": INV_HELP})
@cli_errors
def rotate_certs(c: Context, host: str | None = None, client: str | None = None, ca: bool = False, wait: int = 600,
                 force: bool = False, ci_updated: bool = False, revoke_old: bool = False, vpn_keys: bool = False,
                 ci_issuer: bool = False, inventory: str = DEFAULT_INVENTORY) -> None:
    """Reissue server and client certificates without stranding clients; the cache survives."""
    if ci_issuer:
        if ca or host or client or vpn_keys or revoke_old:
            fail("--ci-issuer goes alone: it replaces the CI trusts' intermediates", 2)
        rep = Reporter()
        rep.recap(flows.ci_trusts.rotate_ci_issuer(load(inventory), rep))
        return
    names = [n.strip() for n in client.split(",") if n.strip()] if client else None
    if vpn_keys and (ca or revoke_old or (host is None) == (names is None)):
        fail("--vpn-keys goes with --host HOSTS or --client NAMES (one kind at a time), without --ca and "
             "--revoke-old", 2)
    inv = load(inventory)
    if vpn_keys and inv.vpn is None:
        fail(f"{inv.file}: there is no VPN in the inventory (all.vars.vpn): no key pair to rotate", 2)
    inv.check_files(inv.select(None), list(inv.clients.values()))
    if vpn_keys:
        rep = Reporter()
        res = (flows.vpn_rotation.rotate_host_keys(inv, inv.select(host), rep) if host is not None else
               flows.vpn_rotation.rotate_client_keys(inv, [inv.client(n) for n in names or []], rep))
        rep.recap([res])
        return
    if revoke_old and (ca or not names):
        fail("--revoke-old goes with --client NAME: it revokes the earlier certificates of the clients rotated", 2)
    rep = Reporter()
    if ca:
        res = flows.rotation.rotate_ca(inv, rep, int(wait), force, ci_updated=ci_updated)
    else:
        res = flows.rotation.rotate_leaves(inv, host, [inv.client(n).name for n in names or []] or None, rep, int(wait),
                                     force, do_hosts=host is not None or client is None,
                                     do_clients=client is not None or host is None, revoke_old=revoke_old)
    rep.recap([res])


@task(help={"host": HOST_HELP,
            "keep_storage": "keep at most this much cache, e.g. 5GB (the least recently used goes first)",
            "keep_duration": "keep records used within this duration, e.g. 48h or 7d",
            "filter": "only prune records matching a buildctl filter, e.g. type==exec.cachemount (repeatable)",
            "all": "include internal and frontend records", "check": "show the cache usage and change nothing",
            "json": "print the per-host report as JSON on stdout",
            "tenant": "prune this tenant's own cache (on its hosts) instead of the fleet buildkitd's",
            "inventory": INV_HELP}, iterable=["filter"])
@cli_errors
def cache_prune(c: Context, host: str | None = None, keep_storage: str | None = None,
                keep_duration: str | None = None, filter: list[str] | None = None, all: bool = False,
                check: bool = False, json_: bool = False, tenant: str | None = None,
                inventory: str = DEFAULT_INVENTORY) -> None:
    """Prune the BuildKit cache by size, age and filters; report what was freed."""
    inv = load(inventory)
    hosts = tenant_hosts(inv, host, tenant)
    inv.check_files(hosts)
    what = flows.cache_prune.Criteria.parse(keep_storage, keep_duration, list(filter or []), all, check)
    rep = Reporter()
    results = flows.cache_prune.cache_prune(inv, hosts, what, check, rep, tenant)
    rep.recap(results, check)
    if json_:
        emit_json(results, check=check)
    if any(r.failed for r in results):
        raise Exit(code=1)


@task(help={"host": HOST_HELP, "json": "print the report as JSON on stdout",
            "prometheus": "print the figures in Prometheus text format (for node_exporter's textfile collector)",
            "inventory": INV_HELP})
@cli_errors
def status(c: Context, host: str | None = None, json_: bool = False, prometheus: bool = False,
           inventory: str = DEFAULT_INVENTORY) -> None:
    """Per host: versions, buildkitd and its step network, cache against the GC limit and the disk, certificate
    expiry and names, firewall vs inventory (IPv6 filtering, rules of others that open the port), and the builds
    of the last 24 hours and 7 days (count, failures, durations, cached steps, by client). Exits 1 when a host is
    unreachable or its firewall lets more than the clients in."""
    inv = load(inventory)
    inv.check_files(inv.select(host))
    st = flows.status.status(inv, inv.select(host))
    if json_:
        print(status_views.as_json(st))
    elif prometheus:
        sys.stdout.write(status_views.prometheus(st))
    else:
        status_views.human(st)
    if not st.ok:
        raise Exit(code=1)


def tenant_hosts(inv: Inventory, host: str | None, tenant: str | None) -> list[BuildHost]:
    """--host, or with --tenant and no --host the tenant's hosts ('default': the fleet's buildkitd, everywhere)."""
    if tenant is not None and tenant != DEFAULT_TENANT:
        t = inv.tenant(tenant)
        return inv.select(host) if host else [inv.hosts[n] for n in t.hosts]
    return inv.select(host)


@task(help={"host": HOST_HELP, "since": "how far back, e.g. 24h, 30m or 7d (default 24h)",
            "tenant": "only this tenant's builds ('default': the fleet buildkitd's)",
            "running": "only the builds running now (whenever they started), each with its client",
            "json": "print the builds as JSON on stdout", "inventory": INV_HELP})
@cli_errors
def builds(c: Context, host: str | None = None, since: str = "24h", tenant: str | None = None, running: bool = False,
           json_: bool = False, inventory: str = DEFAULT_INVENTORY) -> None:
    """Recent builds per host, newest first: when, client, target, duration, steps cached/total, result."""
    span = since_option(since)
    inv = load(inventory)
    hosts = tenant_hosts(inv, host, tenant)
    inv.check_files(hosts)
    per_host_report(flows.builds.recent(inv, hosts, span, tenant, running), json_, print_builds)


def since_option(since: str) -> dt.timedelta:
    try:
        return dt.timedelta(seconds=values.parse_duration(since))
    except ValueError:
        fail(f"--since: {since!r} is not a duration\n  fix: write 24h, 30m or 7d", 2)


def per_host_report(doc: dict[str, Any], json_: bool, table: Callable[[dict[str, Any]], None]) -> None:
    """A per-host document as JSON or a table; exit 1 when a host could not be read."""
    if json_:
        print(json.dumps(doc, indent=2))
    else:
        table(doc)
    if any("error" in h for h in doc.values()):
        raise Exit(code=1)


@task(help={"host": HOST_HELP, "client": "only this client's calls", "since": "how far back, e.g. 24h, 30m or 7d "
                                                                         "(default 24h)",
            "tenant": "only the calls served by this tenant's buildkitd ('default': the fleet's)",
            "json": "print the calls as JSON on stdout", "inventory": INV_HELP})
@cli_errors
def audit(c: Context, host: str | None = None, client: str | None = None, since: str = "24h",
          tenant: str | None = None, json_: bool = False, inventory: str = DEFAULT_INVENTORY) -> None:
    """The gateways' audit trail: one line per call with its client (from the certificate), method, duration,
    bytes each way and result."""
    span = since_option(since)
    inv = load(inventory)
    hosts = inv.select(host)
    inv.check_files(hosts)
    if tenant is not None and tenant != DEFAULT_TENANT:
        inv.tenant(tenant)   # (a known tenant, or a clear error)
    per_host_report(flows.audit.trail(hosts, span, client, tenant), json_, print_audit)


@task(help={"platform": "the platform of the node pool (default linux/amd64)", "replicas": "pods (default 2)",
            "namespace": "Kubernetes namespace (default buildkit)", "storage": "cache volume per pod (default 100Gi)",
            "like": "the build host whose buildkit settings the pods take (default: the first)",
            "out": "file to write (default buildkitd-ARCH.k8s.yaml; mode 0600: it holds the server key)",
            "cpu": "CPU per pod, requested and the limit (default 4)",
            "memory": "memory per pod, requested and the limit (default 8Gi)",
            "deny_egress": "CIDRs build steps may not reach, comma-separated: the cluster's own pod, service and node "
                           "ranges (default: every private range; `none`: link-local only)", "inventory": INV_HELP})
@cli_errors
def k8s_manifests(c: Context, platform: str = "linux/amd64", replicas: int = 2, namespace: str = "buildkit",
                  storage: str = "100Gi", like: str | None = None, out: str | None = None, cpu: str = "4",
                  memory: str = "8Gi", deny_egress: str | None = None, inventory: str = DEFAULT_INVENTORY) -> None:
    """Write the Kubernetes manifests of a BuildKit StatefulSet with our TLS (never applied here: no cluster)."""
    try:
        platform = values.platform(platform)
    except values.BadValue as e:
        fail(f"--platform: {e.problem}\n  fix: {e.fix}", 2)
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", namespace):
        fail(f"--namespace: {namespace!r} is not a Kubernetes namespace\n  fix: lower-case letters, digits, '-'", 2)
    if not re.fullmatch(r"[1-9][0-9]{0,5}(Mi|Gi|Ti)", storage):
        fail(f"--storage: {storage!r} is not a size Kubernetes takes here\n  fix: write e.g. 100Gi or 500Mi", 2)
    if not re.fullmatch(r"[1-9][0-9]{0,2}|[1-9][0-9]{0,5}m", cpu):
        fail(f"--cpu: {cpu!r} is not a CPU quantity\n  fix: write e.g. 4 or 2500m", 2)
    if not re.fullmatch(r"[1-9][0-9]{0,5}(Mi|Gi)", memory):
        fail(f"--memory: {memory!r} is not a memory size Kubernetes takes here\n  fix: write e.g. 8Gi or 512Mi", 2)
    if not 1 <= int(replicas) <= 100:
        fail(f"--replicas: {replicas} is out of range\n  fix: 1 to 100", 2)
    deny = flows.kubernetes.CLUSTER_RANGES if deny_egress is None else egress_ranges(deny_egress)
    inv = load(inventory)
    host = inv.select(like)[0]
    docs = flows.kubernetes.manifests(inv, host, namespace, platform, int(replicas), storage, cpu=cpu, memory=memory,
                                      deny_egress=deny)
    path = Path(out or f"buildkitd-{platform.split('/')[1]}.k8s.yaml")
    atomic_write(path, flows.kubernetes.dump(docs).encode(), 0o600)
    print(f"{path}: {', '.join(d['kind'] for d in docs)} (mode 0600: the Secret holds the server key); "
          f"apply with `kubectl apply -f {path}`", file=sys.stderr)


def egress_ranges(text: str) -> tuple[str, ...]:
    """--deny-egress: CIDRs (a network, written as one), or `none`."""
    if text.strip() == "none":
        return ()
    out = []
    for part in (p.strip() for p in text.split(",")):
        try:
            out.append(str(ipaddress.ip_network(part, strict=True)))
        except ValueError:
            fail(f"--deny-egress: {part!r} is not a network in CIDR form\n  fix: write e.g. 10.96.0.0/12,10.244.0.0/16 "
                 f"(or none)", 2)
    return tuple(out)


@task(help={"client": "the client to diagnose", "inventory": INV_HELP})
@cli_errors
def doctor(c: Context, client: str, inventory: str = DEFAULT_INVENTORY) -> None:
    """From a client's point of view, say in one line per build host what fails and how to fix it."""
    inv = load(inventory)
    inv.check_files([], [inv.client(client)])
    findings = flows.doctor.doctor(inv, inv.client(client))
    print_findings(findings)
    if any(v != "ok" for _, v, _ in findings):
        raise Exit(code=1)


@task(help={"file": "the file to write (mode 0600): age's format, so `age -d` opens it too",
            "recipient": "an age public key (age1...) that may open the file; repeat for several operators "
                         "(default: a passphrase, from BKOPS_PKI_PASSPHRASE or typed)",
            "json": "print the result as JSON on stdout", "inventory": INV_HELP},
      iterable=["recipient"])
@cli_errors
def pki_export(c: Context, file: str, recipient: list[str] | None = None, json_: bool = False,
               inventory: str = DEFAULT_INVENTORY) -> None:
    """Seal the whole PKI state (the CA, every certificate and key, the revocations, CI runners' folders) in one
    file with age: the backup of pki_dir, and how a second operator gets it (`pki-import`)."""
    inv = load(inventory)
    to = list(recipient or [])
    out = flows.pki_backup.export(inv.pki_dir, Path(file), to, None if to else passphrase(confirm=True))
    if json_:
        print(json.dumps(out, indent=2))
    print(f"{out['file']}: {out['files']} files of {inv.pki_dir} sealed with age for "
          f"{len(to) if to else 'the'} {'recipient(s)' if to else 'passphrase'} ({out['bytes']} bytes); keep it "
          f"where a lost laptop does not take it along", file=sys.stderr)


@task(name="pki-import",
      help={"file": "a file written by pki-export", "identity": "an age identity file (age-keygen -o) that opens "
            "it; repeatable (default: the passphrase, from BKOPS_PKI_PASSPHRASE or typed)",
            "replace": "pki_dir holds another state: move it aside (kept as PKI_DIR.before-import-TIME) and import",
            "json": "print the result as JSON on stdout", "inventory": INV_HELP},
      iterable=["identity"])
@cli_errors
def pki_import(c: Context, file: str, identity: list[str] | None = None, replace: bool = False, json_: bool = False,
               inventory: str = DEFAULT_INVENTORY) -> None:
    """Open a pki-export file into pki_dir: a second operator's copy of the PKI, or a restored backup."""
    inv = load(inventory)
    keys = [Path(i) for i in identity or []]
    out = flows.pki_backup.import_(inv.pki_dir, Path(file), keys, None if keys else passphrase(confirm=False),
                                   replace)
    if json_:
        print(json.dumps(out, indent=2))
    if not out["changed"]:
        print(f"{inv.pki_dir} already holds this state: nothing changed", file=sys.stderr)
    else:
        aside = f"; the previous state is kept in {out['moved_aside']}" if out["moved_aside"] else ""
        print(f"{inv.pki_dir}: {out['files']} files imported from {file}{aside}", file=sys.stderr)


@task(help={"host": HOST_HELP, "since": "the window, e.g. 7d (default), 30d or 48h", "out": "the page to write "
            "(default report.html)", "inventory": INV_HELP})
@cli_errors
def report(c: Context, host: str | None = None, since: str = "7d", out: str = "report.html",
           inventory: str = DEFAULT_INVENTORY) -> None:
    """Write one self-contained HTML page of charts: per host and per client, builds per day, median and p95
    build time, the share of cached steps, and the cache against its GC limit and the disk."""
    span = since_option(since)
    inv = load(inventory)
    hosts = inv.select(host)
    inv.check_files(hosts)
    st = flows.status.status(inv, hosts)
    per_host = flows.builds.recent(inv, hosts, span)
    builds = {h: doc.get("builds", []) for h, doc in per_host.items()}
    days = max(1, -(-int(span.total_seconds()) // 86400))
    html = html_report.page(st, builds, days, dt.datetime.now(dt.timezone.utc))
    atomic_write(Path(out), html.encode(), 0o644)
    print(f"{out}: {len(st.hosts)} host(s), {sum(len(b) for b in builds.values())} builds over {days} days",
          file=sys.stderr)


def confirm_host_key(name: str, keys: list[Any]) -> bool:
    """Show a machine's host keys and ask whether they match the provider's console (a terminal only)."""
    print(f"{name}: SSH host keys", file=sys.stderr)
    for k in keys:
        print(f"  {k.kind:22} {k.fingerprint}", file=sys.stderr)
    if not sys.stdin.isatty():
        fail(f"{name}'s host key cannot be confirmed without a terminal: nothing was written\n  fix: pin it with "
             f"--fingerprint {name}=SHA256:... (compare with the provider's console, or `ssh-keygen -lf` of "
             f"/etc/ssh/ssh_host_ed25519_key.pub on the machine)", 2)
    return input("Do these match what the machine's console shows? [y/N] ").strip().lower() in ("y", "yes")


@task(help={"directory": "the deployment's folder (made if missing)",
            "host": "a build host, NAME=ADDRESS (repeat for each)",
            "client": "a client machine, NAME=ADDRESS (repeat for each)",
            "ssh_user": "SSH user on every machine (default root; another needs passwordless sudo on build hosts)",
            "ssh_key": "private key for SSH (default: the SSH agent and ~/.ssh keys)",
            "ssh_port": "SSH port of every machine (default 22)",
            "fingerprint": "a machine's expected SSH host key, NAME=SHA256:... (repeat; without it, the keys are "
                           "shown and you are asked)",
            "set": "an inventory value for every host, KEY=VALUE (repeat), e.g. buildkit.max_parallelism=8 or "
                   "buildkit.image_archive=/srv/buildkit.tar",
            "json": "print the result as JSON on stdout"},
      iterable=["host", "client", "fingerprint", "set_"])
@cli_errors
def init(c: Context, directory: str, host: list[str] | None = None, client: list[str] | None = None,
         ssh_user: str = "root", ssh_key: str | None = None, ssh_port: int = 22,
         fingerprint: list[str] | None = None, set_: list[str] | None = None, json_: bool = False) -> None:
    """Start a real deployment: DIRECTORY/inventory.yml (every key documented, your machines filled in), a
    known_hosts with each machine's SSH host key checked against its fingerprint, and a .gitignore for the PKI."""
    ssh: dict[str, Any] = {**flows.init.settings(set_ or []), "ssh_user": ssh_user}
    if ssh_key:
        ssh["ssh_key"] = str(Path(ssh_key).expanduser().resolve())
    if int(ssh_port) != 22:
        ssh["ssh_port"] = int(ssh_port)
    pairs = flows.init.pairs
    out = flows.init.init(Path(directory), pairs("--host", host or []), pairs("--client", client or []), ssh,
                          int(ssh_port), pairs("--fingerprint", fingerprint or []), confirm_host_key)
    if json_:
        print(json.dumps(out, indent=2))
    for name, what in out["files"].items():
        print(f"{Path(directory) / name}: {what}" + (" (there already: left as it is)" if what == "kept" else ""),
              file=sys.stderr)
    print(f"next: {out['next']}", file=sys.stderr)


@task(help={"name": "the tenant to remove", "confirm": "remove its daemons and caches (without it: only show what "
                                                       "would go)",
            "wait": "wait this many seconds for the tenant's running builds (default 300)",
            "force": "remove even if its builds still run after --wait", "inventory": INV_HELP})
@cli_errors
def remove_tenant(c: Context, name: str, confirm: bool = False, wait: int = 300, force: bool = False,
                  inventory: str = DEFAULT_INVENTORY) -> None:
    """Remove a tenant with no clients: drain and remove its buildkitd, cache volume, files and prune timer on
    every host, then take it out of the inventory. Only with --confirm; without it, show what would go."""
    rep = Reporter()
    results = flows.tenants.remove_tenant(Path(inventory), name, confirm, rep, int(wait), force)
    rep.recap(results, not confirm)


ns = Collection(provision, add_client, remove_client, list_clients, update_clients, rotate_certs, cache_prune, status,
                builds, audit, doctor, k8s_manifests, pki_export, pki_import, init, report, remove_tenant,
                ci_tasks.ci_snippet, ci_tasks.ci_login, ci_tasks.remove_ci_trust)
