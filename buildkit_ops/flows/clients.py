"""add-client, remove-client and update-clients as transactions: what is checked before anything changes, in
which order things change, and what the operator is told when a later step fails after earlier ones were done.

A client machine is a target of the same runner as a build host: its roles (roles/buildx_builder,
roles/failover_proxy, roles/ci_runner) are gathered, planned, shown in check mode or applied, and verified.
The flows take the steps that touch machines (checking a client machine, provisioning the hosts' firewalls,
setting up the client) as arguments, so their decisions are unit-tested with stand-ins."""
from __future__ import annotations

import shutil
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko

from buildkit_ops import inventory as inv_mod
from buildkit_ops.engine import role_path, runner, session
from buildkit_ops.engine.contract import HandlerFailed, Options, Outcome, PlanError
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.errors import BkopsError, FlowError
from buildkit_ops.fleet.nodes import client_nodes
from buildkit_ops.flows.provision import ACCESS, provision, report_pending
from buildkit_ops.inventory import Client, Inventory, values
from buildkit_ops.inventory import edit as inventory_edit
from buildkit_ops.inventory.model import DEFAULT_TENANT
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import client_records, vpn_keys
from buildkit_ops.report.results import HostResult, Reporter
from buildkit_ops.roles.ci_runner.exports import SECRETS, VPN_KEY, folder, summary
from buildkit_ops.roles.vpn_client.exports import NAME as VPN_CLIENT


class ClientError(BkopsError):
    """A client machine could not be used: the message says why and what to do."""


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
    tenant: str | None = None

    def values(self) -> dict[str, Any]:
        """The inventory keys of a new client (only those given)."""
        pairs = (("address", self.address), ("connection", self.connection), ("ssh_address", self.ssh_address),
                 ("ssh_user", self.ssh_user), ("ssh_port", self.ssh_port), ("ssh_key", self.ssh_key),
                 ("known_hosts", self.known_hosts), ("builder", self.builder),
                 ("default_builder", self.default or None), ("home", self.home),
                 ("tenant", _tenant(self.tenant) if self.tenant else None))
        return {k: v for k, v in pairs if v is not None}


def _tenant(name: str) -> str | None:
    """--tenant as the inventory holds it: `default` (the fleet's own buildkitd) is no key at all."""
    return None if name == DEFAULT_TENANT else name


# ------------------------------------------------------------------ the machines (stand-ins in the unit tests)

Setup = Callable[[Inventory, Client, Options, Reporter, HostResult], None]
Preflight = Callable[[Inventory, Client, Options], None]
ProvisionHosts = Callable[[Inventory, Options], list[HostResult]]


def setup_client(inv: Inventory, client: Client, options: Options, rep: Reporter, res: HostResult,
                 keep: bool = False) -> None:
    """The client's roles through the runner: shown (check mode) or applied, then verified. `keep`: the
    connection stays open for the next session to the client (a check before the setup)."""
    try:
        sess = session.to_client(client)
    except RemoteError as e:
        raise ClientError(f"cannot reach {client.name}: {e}") from None
    ok = False
    try:
        plays = runner.prepare(inv, client, role_path.load(inv.file.parent, "client"), options)
        runner.run(sess, plays, options.check, rep, res, options)
        if client.connection == "none":
            res.info["ci"] = summary(inv, client, client_nodes(inv, client, options.platforms))
        ok = True
    except (PlanError, HandlerFailed) as e:
        raise ClientError(str(e)) from None
    except (RemoteError, paramiko.SSHException, ssl.SSLError, TimeoutError, OSError) as e:
        raise ClientError(f"{client.name}: {e}") from None
    finally:
        res.info["remote_commands"] = sess.commands
        if keep and ok:
            sess.hand_back()
        else:
            sess.close()


def check_machine(inv: Inventory, client: Client, options: Options) -> None:
    """Reach the client and plan its roles, before anything is issued or opened: a machine without buildx, or with
    the trap of buildkitd.default.toml, stops here. The hosts come next: their connections open meanwhile, and
    the client's stays open for its setup."""
    session.open_ahead(inv.select(None))
    setup_client(inv, client, Options(check=True, platforms=options.platforms), Reporter(quiet=True),
                 HostResult(client.name), keep=True)


def provision_firewalls(inv: Inventory, options: Options) -> list[HostResult]:
    """Bring every build host's access to the inventory (quietly; options.roles: the firewall's rule, the gateway's
    maps and CRL)."""
    return provision(inv, inv.select(None), options, Reporter(quiet=True))


def host_platforms(inv: Inventory) -> dict[str, str]:
    """What each build host's buildkitd reports it builds for (a quiet check-mode provision: reads, changes
    nothing)."""
    results = provision(inv, inv.select(None), Options(check=True), Reporter(quiet=True))
    return {r.host: r.info.get("platforms", "") for r in results}


def report_firewall(rep: Reporter, res: HostResult, results: list[HostResult], what: str) -> None:
    """One line per build host: what the firewall step of its (quiet) provision run did."""
    for r in results:
        fw = r.step_for(Outcome.FIREWALL)
        rep.step(res, "firewall", f"{r.host}: {what}", "failed" if r.failed else (fw.status if fw else "ok"),
                 r.error or (fw.detail if fw else ""))
    report_pending(rep, res, results)


# ------------------------------------------------------------------ add-client

@dataclass
class Change:
    """What add-client will do, checked before anything changes: the inventory as it will be, the client, and
    whether it is new, moved (its old address) or has other keys changed."""
    inv: Inventory
    client: Client
    new: bool
    moved_from: str | None = None
    edits: dict[str, Any] = field(default_factory=dict)


def plan_change(inventory: Path, req: ClientRequest) -> Change:
    inv = inv_mod.load(inventory)
    name = req.name
    if name not in inv.clients:
        if not req.address:
            inv.client(name)  # raises: unknown client, lists the known ones
        try:
            after = inventory_edit.add_client(inventory, name, req.values(), write=False)
        except inventory_edit.EditError as e:
            raise FlowError(str(e)) from None
        return Change(after, after.clients[name], True)
    moved_from: str | None = None
    edits: dict[str, str | None] = {}
    if req.address:
        try:
            address = values.client_source(req.address)
        except values.BadValue as e:
            raise FlowError(f"--address: {e.problem}\n  fix: {e.fix}", 2) from None
        if address != inv.clients[name].address:
            moved_from, edits["address"] = inv.clients[name].address, address
    if req.home and req.home != inv.clients[name].home:
        edits["home"] = req.home
    if req.tenant and _tenant(req.tenant) != inv.clients[name].tenant:
        edits["tenant"] = _tenant(req.tenant)
    for key, value in edits.items():
        try:
            inv = inventory_edit.set_client_value(inventory, name, key, value, write=False)
        except inventory_edit.EditError as e:
            raise FlowError(str(e)) from None
    return Change(inv, inv.clients[name], False, moved_from, edits)


def add_client(inventory: Path, req: ClientRequest, rep: Reporter, check: bool = False,
               preflight: Preflight = check_machine, provision_hosts: ProvisionHosts = provision_firewalls,
               setup: Setup = setup_client) -> HostResult:
    """Check everything that can be checked (the values, the inventory edit, the CA, the client machine) before
    changing anything; then record the client, issue its certificate, open the firewall on every host, and set
    up its machine. A known client given a new address has moved: its old address is closed. In check mode,
    show what each of those would change, and change nothing."""
    ch = plan_change(inventory, req)
    inv, client, name = ch.inv, ch.client, req.name
    inv.check_files(inv.select(None), [client])
    ca = pki.signing_ca(inv.pki_dir, "client")
    if ca is None:
        raise FlowError(f"there is no CA in {inv.pki_dir} yet: run `invoke provision` first")
    drop: bool | frozenset[str] = frozenset({name}) if ch.moved_from else False
    if check:
        return _show_add(inventory, ch, rep, provision_hosts, setup, drop)
    try:
        preflight(inv, client, Options())
    except ClientError as e:
        raise FlowError(f"{e}\n  nothing was changed: no certificate issued, no firewall opened"
                        + (", and the inventory was not edited" if ch.new else "")) from None

    res = HostResult(name)
    if ch.new:
        inventory_edit.add_client(inventory, name, req.values())
        rep.step(res, "inventory", f"client {name}", "changed", f"recorded in {inventory}")
    elif ch.edits:
        for key, value in ch.edits.items():
            inventory_edit.set_client_value(inventory, name, key, value)
        rep.step(res, "inventory", f"client {name}", "changed",
                 ", ".join(f"address {ch.moved_from} -> {client.address}" if k == "address" else
                           f"{k}: {DEFAULT_TENANT if k == 'tenant' and v is None else v}" for k, v in ch.edits.items()))
    else:
        rep.step(res, "inventory", f"client {name}", "ok", client.address)
    leaf = pki.client_paths(inv.pki_dir, name)
    reason = pki.ensure_leaf(leaf, ca, name, inv.cert_days, inv.cert_renew_days)
    rep.step(res, "pki", "client certificate", "changed" if reason else "ok",
             f"issued ({reason}), CN={name}, clientAuth" if reason else f"valid until {pki.expiry(leaf.crt):%Y-%m-%d}")
    if inv.vpn is not None:
        inv, client = vpn_key_first(inventory, inv, client, setup, rep, res)
    results = provision_hosts(inv, Options(prune_clients=drop, roles=ACCESS))
    report_firewall(rep, res, results, f"{name} a peer of the tunnel ({client.vpn_address})" if inv.vpn else
                    f"port open to {name} ({client.address})" + (f", closed to {ch.moved_from}" if ch.moved_from
                                                                  else ""))
    if any(r.failed for r in results):
        bad = ", ".join(r.host for r in results if r.failed)
        behind = [r.host for r in results if r.failed and r.counts["pending"]]
        raise FlowError(f"the firewall could not be updated on {bad}; the client's builder was not set up. Fix "
                        f"that host (see above) and re-run `invoke add-client {name}`"
                        + (f"; {', '.join(behind)} also has changes pending (a host never provisioned has them "
                           f"all): `invoke provision --host {behind[0]}` first" if behind else ""))
    platforms = {r.host: r.info.get("platforms", "") for r in results}
    try:
        setup(inv, client, Options(platforms=platforms), rep, res)
    except ClientError as e:
        raise FlowError(f"{e}\n  the firewall is open for {name} ({client.address}) on {', '.join(inv.hosts)} "
                        f"and its certificate is issued: fix the cause and re-run `invoke add-client {name}`, or "
                        f"`invoke remove-client {name}` to close it again") from None
    return res


def vpn_key_first(inventory: Path, inv: Inventory, client: Client, setup: Setup, rep: Reporter,
                  res: HostResult) -> tuple[Inventory, Client]:
    """With a VPN, the client's end comes first: its tunnel address written down, then its key pair made on the
    machine (its tunnel role alone), whose public key the build hosts then take as a peer."""
    if inv.vpn_unrecorded:
        inv = inventory_edit.record_vpn_addresses(inventory, inv.vpn_unrecorded)
        client = inv.clients[client.name]
    if client.connection == "none":   # (a CI runner: its key pair made here, to travel as a CI secret)
        key = vpn_keys.local_pair(folder(inv, client) / VPN_KEY)
        changed = vpn_keys.record(inv.pki_dir, "clients", client.name, key)
        rep.step(res, "vpn", "runner's key pair", "changed" if changed else "ok",
                 f"made here, in {folder(inv, client)} (0600): public key {key}; tunnel address {client.vpn_address}")
        return inv, client
    try:
        setup(inv, client, Options(roles=frozenset({VPN_CLIENT})), Reporter(quiet=True), res)
    except ClientError as e:
        raise FlowError(f"{e}\n  its certificate is issued, no firewall was opened: fix the cause and re-run "
                        f"`invoke add-client {client.name}`") from None
    made = res.info.get("vpn_public_key")
    if not isinstance(made, str) or not made:
        raise FlowError(f"{client.name} made no WireGuard key pair (see above): fix the cause and re-run "
                        f"`invoke add-client {client.name}`")
    changed = vpn_keys.record(inv.pki_dir, "clients", client.name, made)
    rep.step(res, "vpn", "client's key pair", "changed" if changed else "ok",
             f"made on {client.name}, public key {made}; tunnel address {client.vpn_address}")
    return inv, client


def vpn_keys_first(inventory: Path, inv: Inventory, setup: Setup, rep: Reporter) -> Inventory:
    """update-clients with a VPN: every reachable client's key pair first (a client new to the VPN makes one), then
    the build hosts take them as peers; the clients' tunnels and builders follow."""
    known = [c for c in inv.clients.values() if pki.client_paths(inv.pki_dir, c.name).crt.exists()]
    for client in known:
        res = HostResult(client.name)
        try:
            inv, _ = vpn_key_first(inventory, inv, inv.clients[client.name], setup, Reporter(quiet=True), res)
        except FlowError as e:
            rep.step(res, "vpn", "client's key pair", "skipped", str(e).splitlines()[0])
    provision_firewalls(inv, Options(roles=ACCESS))
    return inv


def _show_add(inventory: Path, ch: Change, rep: Reporter, provision_hosts: ProvisionHosts, setup: Setup,
              drop: bool | frozenset[str]) -> HostResult:
    """add-client --check: the inventory edit, the certificate, each host's firewall and the client machine's
    diffs, as they would be; nothing is written anywhere."""
    name, client, inv = ch.client.name, ch.client, ch.inv
    res = HostResult(name)
    edit = ("recorded" if ch.new else ", ".join(f"{k}: {v}" for k, v in ch.edits.items())) if ch.new or ch.edits else ""
    rep.step(res, "inventory", f"client {name}", "would change" if edit else "ok", f"{edit} in {inventory}"
             if edit else client.address)
    leaf = pki.client_paths(inv.pki_dir, name)
    ca = pki.signing_ca(inv.pki_dir, "client")
    reason = pki.reissue_reason(leaf.crt, leaf.key, ca, inv.cert_renew_days) if ca else "no CA"
    rep.step(res, "pki", "client certificate", "would change" if reason else "ok",
             f"would issue ({reason}), CN={name}" if reason else f"valid until {pki.expiry(leaf.crt):%Y-%m-%d}")
    results = provision_hosts(inv, Options(check=True, prune_clients=drop, roles=ACCESS))
    report_firewall(rep, res, results, f"port open to {name} ({client.address})")
    try:
        setup(inv, client, Options(check=True, platforms={r.host: r.info.get("platforms", "") for r in results}),
              rep, res)
    except ClientError as e:
        rep.fail(res, str(e))
    return res


# ------------------------------------------------------------------ remove-client

def remove_from_machine(inv: Inventory, client: Client) -> str:
    """What the client's roles leave once it is removed: its builder, certificates and failover proxy gone from
    its machine (the roles plan their absence); for a CI runner, its folder here."""
    if client.connection == "none":
        shutil.rmtree(folder(inv, client), ignore_errors=True)
        return f"CI runner: {folder(inv, client)} removed; delete its CI secrets {', '.join(SECRETS.values())}"
    res = HostResult(client.name)
    try:
        setup_client(inv, client, Options(remove=frozenset({client.name})), Reporter(quiet=True), res)
    except ClientError as e:
        raise RemoteError(str(e)) from None
    done = [s.detail for s in res.steps if s.status == "changed"]
    return "; ".join(done) if done else "nothing of it was left there"


def remove_client(inventory: Path, name: str, rep: Reporter, provision_hosts: ProvisionHosts = provision_firewalls,
                  unbootstrap: Callable[[Inventory, Client], str] = remove_from_machine
                  ) -> tuple[HostResult, list[dict[str, Any]]]:
    """Revoke its certificate (the CRL every gateway enforces from this run on), close the firewall on every host
    (the client stays in the inventory if that fails), then drop it from the inventory and remove its builder
    where reachable."""
    inv = inv_mod.load(inventory)
    client = inv.client(name)
    inv.check_files(inv.select(None))
    res = HostResult(name)
    try:
        after = inventory_edit.remove_client(inventory, name, write=False)
    except inventory_edit.EditError as e:
        raise FlowError(str(e)) from None
    if unbootstrap is remove_from_machine:   # (its machine comes last: its connection opens while the hosts work)
        session.open_ahead([client])
    entries = client_records.revoke(inv, name)
    if entries:
        rep.step(res, "pki", "certificates revoked", "changed",
                 f"serial {', '.join(e['serial'] for e in entries)} on the CRL ({client_records.revoked_path(inv)})")
    results = provision_hosts(after, Options(prune_clients=frozenset({name}), roles=ACCESS))
    report_firewall(rep, res, results, (f"{name} no peer of the tunnel" if inv.vpn else
                                        f"port closed to {name} ({client.address})") + ", its certificate refused")
    if any(r.failed for r in results):
        raise FlowError(f"the firewall could not be closed on every host; {name} stays in the inventory: fix the "
                        f"host and re-run `invoke remove-client {name}`")
    inventory_edit.remove_client(inventory, name)
    rep.step(res, "inventory", f"client {name}", "changed", f"removed from {inventory}")
    try:
        rep.step(res, "client", f"builder {client.builder}", "changed", unbootstrap(inv, client))
    except (RemoteError, OSError) as e:
        rep.step(res, "client", f"builder {client.builder}", "skipped",
                 f"{name} unreachable ({e}); remove the builder there by hand: docker buildx rm {client.builder}")
    vpn_keys.forget(inv.pki_dir, "clients", name)   # (no host has it as a peer any more)
    return res, entries


# ------------------------------------------------------------------ update-clients

def update_clients(inventory: Path, check: bool, rep: Reporter,
                   platforms_of: Callable[[Inventory], dict[str, str]] = host_platforms,
                   setup: Setup = setup_client) -> list[HostResult]:
    """Bring every reachable client to the current fleet (after hosts were added or removed, or a home pinned):
    only builders whose nodes or order changed are recreated. Unreachable clients are reported and skipped; their
    builders keep working with the hosts they know."""
    inv = inv_mod.load(inventory)
    inv.check_files(inv.select(None), list(inv.clients.values()))
    if inv.vpn is not None and not check:
        inv = vpn_keys_first(inventory, inv, setup, rep)
    options = Options(check=check, platforms=platforms_of(inv))
    results = []
    for client in inv.clients.values():
        res = HostResult(client.name)
        results.append(res)
        if not pki.client_paths(inv.pki_dir, client.name).crt.exists():
            rep.step(res, "client", f"builder {client.builder}", "skipped",
                     f"no certificate yet: run `invoke add-client {client.name}`")
            continue
        try:
            setup(inv, client, options, rep, res)
        except ClientError as e:
            rep.fail(res, str(e), unreachable=str(e).startswith(f"cannot reach {client.name}"))
    return results
