"""add-client and remove-client as transactions: what is checked before anything changes, in which order
things change, and what the operator is told when a later step fails after earlier ones were done.

The flows take the steps that touch machines (reaching the client, provisioning the hosts' firewalls,
setting up the builder) as arguments, so their decisions are unit-tested with stand-ins."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_ops import inventory as inv_mod
from buildkit_ops.clients import builder as clients
from buildkit_ops.clients import records as client_records
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.flows.provision import provision
from buildkit_ops.inventory import Client, Inventory, values
from buildkit_ops.inventory import edit as inventory_edit
from buildkit_ops.pki import certs as pki
from buildkit_ops.report.output import HostResult, Reporter


class FlowError(Exception):
    """The flow stopped: what happened, what was (not) changed, and how to go on. `code` is the exit status."""

    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@dataclass
class ClientRequest:
    """add-client's arguments: a name, and for a new client (or a move) its address and how to reach it."""
    name: str
    address: str | None = None
    connection: str | None = None
    ssh_address: str | None = None
    ssh_user: str | None = None
    ssh_port: int | None = None
    ssh_key: str | None = None
    known_hosts: str | None = None
    builder: str | None = None
    default: bool = False
    home: str | None = None

    def values(self) -> dict[str, Any]:
        """The inventory keys of a new client (only those given)."""
        pairs = (("address", self.address), ("connection", self.connection), ("ssh_address", self.ssh_address),
                 ("ssh_user", self.ssh_user), ("ssh_port", self.ssh_port), ("ssh_key", self.ssh_key),
                 ("known_hosts", self.known_hosts), ("builder", self.builder),
                 ("default_builder", self.default or None), ("home", self.home))
        return {k: v for k, v in pairs if v is not None}


def provision_firewalls(inv: Inventory, drop: bool | set[str]) -> list[HostResult]:
    """Bring every build host to the inventory (quietly): for a client, that is its firewall rule."""
    return provision(inv, inv.select(None), False, Reporter(quiet=True), drop_clients=drop)


def host_platforms(inv: Inventory) -> dict[str, str]:
    """What each build host's buildkitd reports it builds for (a quiet check-mode provision: reads, changes
    nothing)."""
    results = provision(inv, inv.select(None), True, Reporter(quiet=True))
    return {r.host: r.info.get("platforms", "") for r in results}


def report_firewall(rep: Reporter, res: HostResult, results: list[HostResult], what: str) -> None:
    """One line per build host: what the firewall step of its (quiet) provision run did."""
    for r in results:
        fw = next((s for s in r.steps if s["role"] == "firewall" and s["name"].startswith("port")), None)
        rep.step(res, "firewall", f"{r.host}: {what}", "failed" if r.failed else (fw["status"] if fw else "ok"),
                 r.error or (fw["detail"] if fw else ""))


def add_client(inventory: Path, req: ClientRequest, rep: Reporter,
               preflight: Callable[[Client], tuple[Any, dict[str, str]]] = clients.preflight,
               provision_hosts: Callable[[Inventory, bool | set[str]], list[HostResult]] = provision_firewalls,
               bootstrap: Callable[..., None] = clients.bootstrap) -> HostResult:
    """Check everything that can be checked (the values, the inventory edit, the CA, the client machine) before
    changing anything; then record the client, issue its certificate, open the firewall on every host, and set
    up its builder. A known client given a new address has moved: its old address is closed."""
    inv = inv_mod.load(inventory)
    name = req.name
    new = name not in inv.clients
    moved_from = None
    edits: dict[str, Any] = {}   # keys of a known client that change (recorded once the client answered)
    if new:
        if not req.address:
            inv.client(name)  # raises: unknown client, lists the known ones
        try:
            inv = inventory_edit.add_client(inventory, name, req.values(), write=False)
        except inventory_edit.EditError as e:
            raise FlowError(str(e)) from None
    else:
        if req.address:
            try:
                address = values.client_source(req.address)
            except values.BadValue as e:
                raise FlowError(f"--address: {e.problem}\n  fix: {e.fix}", 2) from None
            if address != inv.clients[name].address:
                moved_from, edits["address"] = inv.clients[name].address, address
        if req.home and req.home != inv.clients[name].home:
            edits["home"] = req.home
        for key, value in edits.items():
            try:
                inv = inventory_edit.set_client_value(inventory, name, key, value, write=False)
            except inventory_edit.EditError as e:
                raise FlowError(str(e)) from None
    client = inv.clients[name]
    inv.check_files(inv.select(None), [client])
    ca = pki.signing_ca(inv.pki_dir, "client")
    if ca is None:
        raise FlowError(f"there is no CA in {inv.pki_dir} yet: run `invoke provision` first")
    try:
        sess, facts = preflight(client)
    except clients.ClientError as e:
        raise FlowError(f"{e}\n  nothing was changed: no certificate issued, no firewall opened"
                        + (", and the inventory was not edited" if new else "")) from None

    res = HostResult(name)
    try:
        if new:
            inventory_edit.add_client(inventory, name, req.values())
            rep.step(res, "inventory", f"client {name}", "changed", f"recorded in {inventory}")
        elif edits:
            for key, value in edits.items():
                inventory_edit.set_client_value(inventory, name, key, value)
            rep.step(res, "inventory", f"client {name}", "changed",
                     ", ".join(f"address {moved_from} -> {client.address}" if k == "address" else f"{k}: {v}"
                               for k, v in edits.items()))
        else:
            rep.step(res, "inventory", f"client {name}", "ok", client.address)
        leaf = pki.client_paths(inv.pki_dir, name)
        reason = pki.ensure_leaf(leaf, ca, name, inv.cert_days, inv.cert_renew_days)
        rep.step(res, "pki", "client certificate", "changed" if reason else "ok",
                 f"issued ({reason}), CN={name}, clientAuth" if reason
                 else f"valid until {pki.expiry(leaf.crt):%Y-%m-%d}")
        results = provision_hosts(inv, {name} if moved_from else False)
        report_firewall(rep, res, results, f"port open to {name} ({client.address})"
                        + (f", closed to {moved_from}" if moved_from else ""))
        if any(r.failed for r in results):
            bad = ", ".join(r.host for r in results if r.failed)
            raise FlowError(f"the firewall could not be updated on {bad}; the client's builder was not set up. Fix "
                            f"that host (see above) and re-run `invoke add-client {name}`")
        platforms = {r.host: r.info.get("platforms", "") for r in results}
        try:
            bootstrap(inv, client, sess, facts, platforms, rep, res)
        except clients.ClientError as e:
            raise FlowError(f"{e}\n  the firewall is open for {name} ({client.address}) on {', '.join(inv.hosts)} "
                            f"and its certificate is issued: fix the cause and re-run `invoke add-client {name}`, or "
                            f"`invoke remove-client {name}` to close it again") from None
    finally:
        sess.close()
    return res


def remove_client(inventory: Path, name: str, rep: Reporter,
                  provision_hosts: Callable[[Inventory, bool | set[str]], list[HostResult]] = provision_firewalls,
                  unbootstrap: Callable[..., str] = clients.unbootstrap
                  ) -> tuple[HostResult, dict[str, Any] | None]:
    """Close the firewall on every host first (the client stays in the inventory if that fails), then drop it
    from the inventory, remove its builder where reachable, and record its certificate as revoked."""
    inv = inv_mod.load(inventory)
    client = inv.client(name)
    inv.check_files(inv.select(None))
    res = HostResult(name)
    try:
        after = inventory_edit.remove_client(inventory, name, write=False)
    except inventory_edit.EditError as e:
        raise FlowError(str(e)) from None
    results = provision_hosts(after, {name})
    report_firewall(rep, res, results, f"port closed to {name} ({client.address})")
    if any(r.failed for r in results):
        raise FlowError(f"the firewall could not be closed on every host; {name} stays in the inventory: fix the "
                        f"host and re-run `invoke remove-client {name}`")
    inventory_edit.remove_client(inventory, name)
    rep.step(res, "inventory", f"client {name}", "changed", f"removed from {inventory}")
    try:
        rep.step(res, "client", f"builder {client.builder}", "changed", unbootstrap(client, inv))
    except (RemoteError, OSError) as e:
        rep.step(res, "client", f"builder {client.builder}", "skipped",
                 f"{name} unreachable ({e}); remove the builder there by hand: docker buildx rm {client.builder}")
    entry = client_records.record_revocation(inv, name)
    if entry:
        rep.step(res, "pki", "certificate revoked", "changed",
                 f"serial {entry['serial']} recorded in {client_records.revoked_path(inv)}")
    return res, entry


def update_clients(inventory: Path, check: bool, rep: Reporter,
                   preflight: Callable[[Client], tuple[Any, dict[str, str]]] = clients.preflight,
                   platforms_of: Callable[[Inventory], dict[str, str]] = host_platforms,
                   bootstrap: Callable[..., None] = clients.bootstrap) -> list[HostResult]:
    """Bring every reachable client's builder to the current fleet (after hosts were added or removed, or a
    home pinned): only builders whose nodes or order changed are recreated. Unreachable clients are reported
    and skipped; their builders keep working with the hosts they know."""
    inv = inv_mod.load(inventory)
    inv.check_files(inv.select(None), list(inv.clients.values()))
    platforms = platforms_of(inv)
    results = []
    for client in inv.clients.values():
        res = HostResult(client.name)
        results.append(res)
        try:
            sess, facts = preflight(client)
        except clients.ClientError as e:
            rep.fail(res, str(e), unreachable=True)
            continue
        try:
            if not pki.client_paths(inv.pki_dir, client.name).crt.exists():
                rep.step(res, "client", f"builder {client.builder}", "skipped",
                         f"no certificate yet: run `invoke add-client {client.name}`")
            elif check:
                nodes, _, state = clients.wanted(inv, client, platforms)
                same = facts.get("state") == state
                rep.step(res, "client", f"builder {client.builder}", "ok" if same else "would change",
                         "nodes: " + ", ".join(n["name"].removeprefix(client.builder + "-") for n in nodes))
            else:
                bootstrap(inv, client, sess, facts, platforms, rep, res)
        except clients.ClientError as e:
            rep.fail(res, str(e))
        finally:
            sess.close()
    return results
