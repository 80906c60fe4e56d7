"""buildkit-ops' tasks: turn fresh VMs into shared, mutual-TLS BuildKit servers and manage their clients.

The installed command `bkops` runs these; in a checkout, `invoke` runs them with the lab's tasks beside
them (tasks.py at the top). `bkops --list`, `bkops TASK --help`.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from invoke import Collection, Exit
from rich.console import Console

from buildkit_ops import clients, inventory_edit, pki
from buildkit_ops import inventory as inv_mod
from buildkit_ops.cli import task
from buildkit_ops.output import HostResult, Reporter, emit_json, err
from buildkit_ops.provision import provision as run_provision
from buildkit_ops.remote import RemoteError

INV_HELP = "inventory file (default: inventory.yml)"


def cli_errors(fn):
    """Turn our errors into one clear message on stderr and a non-zero exit."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except inv_mod.InventoryError as e:
            print(f"error: {e}", file=sys.stderr)
            raise Exit(code=2) from None
        except (RemoteError, clients.ClientError, inventory_edit.EditError, pki.PKIError) as e:
            print(f"error: {e}", file=sys.stderr)
            raise Exit(code=1) from None
    return wrapper


def fail(message: str, code: int = 1):
    print(f"error: {message}", file=sys.stderr)
    raise Exit(code=code)


def _port(value):
    if value is None:
        return None
    if not str(value).isdigit():
        fail(f"--ssh-port: {value!r} is not a port\n  fix: give a number such as 22", 2)
    return int(value)


@task(help={"host": "build host(s): a name, a comma-separated list, a group, or 'all' (default)",
            "check": "show what would change (diffs and commands) and change nothing",
            "json": "print the per-host result as JSON on stdout",
            "wait": "before restarting buildkitd, wait this many seconds for running builds (default 300)",
            "force": "restart even if builds are still running after --wait",
            "prune_clients": "close the firewall for addresses of clients no longer in the inventory",
            "inventory": INV_HELP})
@cli_errors
def provision(c, host=None, check=False, json_=False, wait=300, force=False, prune_clients=False,
              inventory="inventory.yml"):
    """Make build host(s) a mutual-TLS BuildKit server: engine, PKI, config, firewall, service."""
    inv = inv_mod.load(inventory)
    hosts = inv.select(host)
    inv.check_files(hosts)
    rep = Reporter()
    results = run_provision(inv, hosts, check, rep, int(wait), force, drop_clients=prune_clients)
    rep.recap(results, check)
    if json_:
        emit_json(results, check=check)
    if any(r.failed for r in results):
        raise Exit(code=1)


def report_firewall(rep: Reporter, res: HostResult, results, what: str) -> None:
    """One line per build host: what the firewall step of its (quiet) provision run did."""
    for r in results:
        fw = next((s for s in r.steps if s["role"] == "firewall" and s["name"].startswith("port")), None)
        rep.step(res, "firewall", f"{r.host}: {what}", "failed" if r.failed else (fw["status"] if fw else "ok"),
                 r.error or (fw["detail"] if fw else ""))


CLIENT_HELP = {
    "name": "client name: its certificate's CN and its key in the inventory",
    "address": "address the build hosts see the client's connections come from (needed when NAME is new)",
    "connection": "how to reach the client machine: 'ssh' (default) or 'local' (this machine)",
    "ssh_address": "address SSH connects to, if not --address",
    "ssh_user": "SSH user on the client (default root)",
    "ssh_port": "SSH port on the client (default 22)",
    "ssh_key": "private key for SSH to the client",
    "known_hosts": "known_hosts file holding the client's host key",
    "builder": "name of the buildx builder created there (default buildkit-ops)",
    "default": "make it the client's default builder",
    "inventory": INV_HELP,
}


@task(help=CLIENT_HELP, auto_shortflags=False)
@cli_errors
def add_client(c, name, address=None, connection=None, ssh_address=None, ssh_user=None, ssh_port=None,
               ssh_key=None, known_hosts=None, builder=None, default=False, inventory="inventory.yml"):
    """Issue a client certificate, open the firewall for it, and set up its buildx builder."""
    inv = inv_mod.load(inventory)
    new = name not in inv.clients
    if new:
        if not address:
            inv.client(name)  # raises: unknown client, lists the known ones
        values = {"address": address}
        for k, v in (("connection", connection), ("ssh_address", ssh_address), ("ssh_user", ssh_user),
                     ("ssh_port", _port(ssh_port)), ("ssh_key", ssh_key),
                     ("known_hosts", known_hosts), ("builder", builder), ("default_builder", default or None)):
            if v is not None:
                values[k] = v
        try:
            inv = inventory_edit.add_client(Path(inventory), name, values, write=False)
        except inventory_edit.EditError as e:
            fail(str(e))
    moved_from = None
    if not new and address:
        try:
            address = inv_mod.types.client_source(address)
        except inv_mod.types.BadValue as e:
            fail(f"--address: {e.problem}\n  fix: {e.fix}", 2)
        if address != inv.clients[name].address:
            # the client moved: record the new address; its old one is closed on every host below
            moved_from = inv.clients[name].address
            try:
                inv = inventory_edit.set_client_address(Path(inventory), name, address, write=False)
            except inventory_edit.EditError as e:
                fail(str(e))
    client = inv.clients[name]
    inv.check_files(inv.select(None), [client])
    rep = Reporter()
    res = HostResult(name)
    ca = pki.signing_ca(inv.pki_dir, "client")
    if ca is None:
        fail(f"there is no CA in {inv.pki_dir} yet: run `invoke provision` first")
    try:
        sess, facts = clients.preflight(client)
    except clients.ClientError as e:
        fail(f"{e}\n  nothing was changed: no certificate issued, no firewall opened"
             + (", and the inventory was not edited" if new else ""))
    try:
        if new:
            inventory_edit.add_client(Path(inventory), name, values)
            rep.step(res, "inventory", f"client {name}", "changed", f"recorded in {inventory}")
        elif moved_from:
            inventory_edit.set_client_address(Path(inventory), name, client.address)
            rep.step(res, "inventory", f"client {name}", "changed", f"address {moved_from} -> {client.address}")
        else:
            rep.step(res, "inventory", f"client {name}", "ok", client.address)
        leaf = pki.client_paths(inv.pki_dir, name)
        reason = pki.ensure_leaf(leaf, ca, name, inv.cert_days, inv.cert_renew_days)
        rep.step(res, "pki", "client certificate", "changed" if reason else "ok",
                 f"issued ({reason}), CN={name}, clientAuth" if reason
                 else f"valid until {pki.expiry(leaf.crt):%Y-%m-%d}")
        results = run_provision(inv, inv.select(None), False, Reporter(quiet=True),
                                drop_clients={name} if moved_from else False)
        report_firewall(rep, res, results, f"port open to {name} ({client.address})"
                        + (f", closed to {moved_from}" if moved_from else ""))
        if any(r.failed for r in results):
            bad = ", ".join(r.host for r in results if r.failed)
            fail(f"the firewall could not be updated on {bad}; the client's builder was not set up. Fix that host "
                 f"(see above) and re-run `invoke add-client {name}`")
        platforms = {r.host: r.info.get("platforms", "") for r in results}
        try:
            clients.bootstrap(inv, client, sess, facts, platforms, rep, res)
        except clients.ClientError as e:
            hosts = ", ".join(inv.hosts)
            fail(f"{e}\n  the firewall is open for {name} ({client.address}) on {hosts} and its certificate is "
                 f"issued: fix the cause and re-run `invoke add-client {name}`, or `invoke remove-client {name}` "
                 f"to close it again")
    finally:
        sess.close()
    rep.recap([res])


@task(help={"name": "client to remove", "inventory": INV_HELP})
@cli_errors
def remove_client(c, name, inventory="inventory.yml"):
    """Close the firewall for a client, remove its builder, and record its certificate as revoked."""
    inv = inv_mod.load(inventory)
    client = inv.client(name)
    inv.check_files(inv.select(None))
    rep = Reporter()
    res = HostResult(name)
    try:
        after = inventory_edit.remove_client(Path(inventory), name, write=False)
    except inventory_edit.EditError as e:
        fail(str(e))
    results = run_provision(after, after.select(None), False, Reporter(quiet=True), drop_clients={name})
    report_firewall(rep, res, results, f"port closed to {name} ({client.address})")
    if any(r.failed for r in results):
        fail(f"the firewall could not be closed on every host; {name} stays in the inventory: fix the host and "
             f"re-run `invoke remove-client {name}`")
    inventory_edit.remove_client(Path(inventory), name)
    rep.step(res, "inventory", f"client {name}", "changed", f"removed from {inventory}")
    try:
        rep.step(res, "client", f"builder {client.builder}", "changed", clients.unbootstrap(client))
    except (RemoteError, OSError) as e:
        rep.step(res, "client", f"builder {client.builder}", "skipped",
                 f"{name} unreachable ({e}); remove the builder there by hand: docker buildx rm {client.builder}")
    entry = clients.record_revocation(inv, name)
    if entry:
        rep.step(res, "pki", "certificate revoked", "changed",
                 f"serial {entry['serial']} recorded in {clients.revoked_path(inv)}")
    rep.recap([res])
    if entry:
        err.print(f"[yellow]note:[/yellow] buildkitd has no revocation list: {name}'s certificate stays valid "
                  f"until it expires ({entry['not_after'][:10]}) or the CA is rotated. The firewall now blocks its "
                  f"address; to make the certificate itself useless, run `invoke rotate-certs --ca`.")


@task(help={"json": "print the clients as JSON", "inventory": INV_HELP})
@cli_errors
def list_clients(c, json_=False, inventory="inventory.yml"):
    """List clients: address, connection, certificate expiry and status (revoked ones too)."""
    rows = clients.client_rows(inv_mod.load(inventory))
    if json_:
        print(json.dumps(rows, indent=2))
        return
    from rich.table import Table
    t = Table("client", "address", "connection", "builder", "cert expires", "status")
    for r in rows:
        t.add_row(r["name"], r["address"], r["connection"], r["builder"], r["cert_expires"] or "-", r["status"])
    Console(emoji=False).print(t)


@task(help={"host": "reissue the server certificates of these hosts (default: all, unless --client is given)",
            "client": "reissue these clients' certificates, comma-separated (default: all, unless --host is given)",
            "ca": "rotate the CA itself, with an overlap window; re-run to resume after an interruption",
            "wait": "before restarting buildkitd, wait this many seconds for running builds (default 600)",
            "force": "restart even if builds still run after --wait; with --ca, strand unreachable clients",
            "inventory": INV_HELP})
@cli_errors
def rotate_certs(c, host=None, client=None, ca=False, wait=600, force=False, inventory="inventory.yml"):
    """Reissue server and client certificates without stranding clients; the cache survives."""
    from buildkit_ops import rotation
    inv = inv_mod.load(inventory)
    inv.check_files(inv.select(None), list(inv.clients.values()))
    rep = Reporter()
    try:
        if ca:
            res = rotation.rotate_ca(inv, rep, int(wait), force)
        else:
            names = [n.strip() for n in client.split(",") if n.strip()] if client else None
            for n in names or []:
                inv.client(n)
            res = rotation.rotate_leaves(inv, host, names, rep, int(wait), force,
                                         do_hosts=host is not None or client is None,
                                         do_clients=client is not None or host is None)
    except rotation.RotationError as e:
        fail(str(e))
    rep.recap([res])


@task(help={"host": "build host(s): a name, a comma-separated list, a group, or 'all' (default)",
            "keep_storage": "keep at most this much cache, e.g. 5GB (the least recently used goes first)",
            "keep_duration": "keep records used within this duration, e.g. 48h or 7d",
            "filter": "only prune records matching a buildctl filter, e.g. type==exec.cachemount (repeatable)",
            "all": "include internal and frontend records",
            "check": "show the cache usage and change nothing",
            "json": "print the per-host report as JSON on stdout",
            "inventory": INV_HELP}, iterable=["filter"])
@cli_errors
def cache_prune(c, host=None, keep_storage=None, keep_duration=None, filter=None, all=False, check=False,
                json_=False, inventory="inventory.yml"):
    """Prune the BuildKit cache by size, age and filters; report what was freed."""
    from buildkit_ops import health
    inv = inv_mod.load(inventory)
    hosts = inv.select(host)
    inv.check_files(hosts)
    try:
        ks = inv_mod.parse_size(keep_storage) if keep_storage is not None else None
        kd = inv_mod.parse_duration(keep_duration) if keep_duration is not None else None
    except ValueError:
        fail("--keep-storage takes a size such as 5GB or 512MB, --keep-duration a duration such as 48h or 7d", 2)
    for f in filter or []:
        try:
            inv_mod.types.prune_filter(f)
        except inv_mod.types.BadValue as e:
            fail(f"--filter: {e.problem}\n  fix: {e.fix}", 2)
    if not check and ks is None and kd is None and not filter and not all:
        fail("say what to prune: --keep-storage, --keep-duration, --filter and/or --all (or --check to look)", 2)
    rep = Reporter()
    results = health.cache_prune(inv, hosts, ks, kd, list(filter or []), all, check, rep)
    for r in results:
        if r.error:
            rep.fail(r, r.error, r.unreachable)
    rep.recap(results, check)
    if json_:
        emit_json(results, check=check)
    if any(r.failed for r in results):
        raise Exit(code=1)


@task(help={"host": "build host(s), a group, or 'all' (default)", "json": "print the report as JSON on stdout",
            "inventory": INV_HELP})
@cli_errors
def status(c, host=None, json_=False, inventory="inventory.yml"):
    """Per host: versions, buildkitd and its step network, cache, certificate expiry and names, firewall vs
    inventory (IPv6 filtering, rules of others that open the port). Exits 1 when a host is unreachable or
    its firewall lets more than the clients in."""
    from buildkit_ops import health
    inv = inv_mod.load(inventory)
    inv.check_files(inv.select(host))
    doc = health.status(inv, inv.select(host))
    if json_:
        print(json.dumps(doc, indent=2))
    else:
        con = err
        if doc["ca"]:
            con.print(f"CA: expires {doc['ca']['expires'][:10]} ({doc['ca']['days_left']} days)")
        for name, h in doc["hosts"].items():
            if not h.get("reachable"):
                con.print(f"[red]{name}: unreachable[/red] {h.get('error', '')}")
                continue
            bk, sc, fw = h["buildkitd"], h.get("server_certificate") or {}, h["firewall"]
            con.print(f"[bold]{name}[/bold]: docker {h['docker']}, compose {h['compose']}, buildkitd {bk['state']} "
                      f"{bk['version'] or ''} ({bk['platforms']}), build steps on network: {bk['step_network']}")
            con.print(f"  cache {health.human(h['cache']['total'])} in {h['cache']['records']} records; server cert "
                      f"expires {sc.get('expires', '?')[:10]}, names {'match' if sc.get('names_match') else 'DIFFER'}; "
                      f"firewall {'active' if fw['active'] else 'INACTIVE'} "
                      f"({'IPv4 and IPv6' if fw['ipv6'] else 'IPv4 ONLY'}), "
                      f"allows {', '.join(fw['allowed']) or 'nobody'}")
        for cname, cl in doc["clients"].items():
            exp = cl["certificate"]["expires"][:10] if cl["certificate"] else "-"
            con.print(f"client {cname} ({cl['address']}): certificate expires {exp}, {cl['status']}")
        for w in doc["warnings"]:
            con.print(f"[yellow]warning:[/yellow] {w}")
        for w in doc["failures"]:
            con.print(f"[bold red]failed:[/bold red] {w}")
    if doc["failures"] or any(not h.get("reachable") for h in doc["hosts"].values()):
        raise Exit(code=1)


@task(help={"client": "the client to diagnose", "inventory": INV_HELP})
@cli_errors
def doctor(c, client, inventory="inventory.yml"):
    """From a client's point of view, say in one line per build host what fails and how to fix it."""
    from buildkit_ops import health
    inv = inv_mod.load(inventory)
    inv.check_files([], [inv.client(client)])
    findings = health.doctor(inv, inv.client(client))
    out = Console(highlight=False, soft_wrap=True, emoji=False)
    for host, verdict, line in findings:
        style = "green" if verdict == "ok" else "red"
        out.print(f"[{style}]{host}[/{style}]: {line}")
    if any(v != "ok" for _, v, _ in findings):
        raise Exit(code=1)


ns = Collection(provision, add_client, remove_client, list_clients, rotate_certs, cache_prune, status, doctor)
