"""rotate-certs --vpn-keys: new WireGuard key pairs for build hosts or for clients, one kind at a time, without
stranding anyone reachable. A machine makes its new key pair itself and puts it in force at once; the other side
learns the new public key in the same run (the hosts' peers, in place; each client's peer for the host, then its
tunnel brought up again). A client the run cannot reach keeps a host's old key and loses that host until
`invoke update-clients` reaches it (said, never silent); a CI runner needs its new secret (said)."""
from __future__ import annotations

from buildkit_ops.engine.contract import Options
from buildkit_ops.errors import BkopsError
from buildkit_ops.flows.clients import ClientError, report_firewall, setup_client
from buildkit_ops.flows.provision import ACCESS, provision
from buildkit_ops.inventory import BuildHost, Client, Inventory
from buildkit_ops.pki import vpn_keys
from buildkit_ops.report.results import HostResult, Reporter
from buildkit_ops.roles.ci_runner.exports import VPN_KEY, VPN_SECRET, folder
from buildkit_ops.roles.vpn_client.exports import NAME as VPN_CLIENT


class VpnRotationError(BkopsError):
    pass


def _client_ends(inv: Inventory, clients: list[Client], options: Options, rep: Reporter, res: HostResult,
                 what: str) -> list[str]:
    """Each client's end of the tunnel through its own role (a CI runner's configuration in its folder); returns
    the clients that could not be reached."""
    lost = []
    for c in clients:
        sub = HostResult(c.name)
        try:
            setup_client(inv, c, options, Reporter(quiet=True), sub)
        except ClientError as e:
            lost.append(c.name)
            rep.step(res, "vpn", f"{c.name}: {what}", "failed", str(e).splitlines()[0])
            continue
        if c.connection == "none":
            changed = any(s.status == "changed" for s in sub.steps)
            rep.step(res, "vpn", f"{c.name}: {what}", "changed" if changed else "ok",
                     f"NEEDS A NEW SECRET: update {VPN_SECRET[1]} in its CI from {folder(inv, c) / VPN_SECRET[0]}"
                     if changed else "unchanged")
            continue
        key = sub.info.get("vpn_public_key")
        if isinstance(key, str) and key:
            vpn_keys.record(inv.pki_dir, "clients", c.name, key)
        rep.step(res, "vpn", f"{c.name}: {what}", "changed", f"public key {key}")
    return lost


def rotate_client_keys(inv: Inventory, clients: list[Client], rep: Reporter) -> HostResult:
    """New key pairs for these clients, made on each (a CI runner's here), then every host's peers."""
    res = HostResult("rotation")
    if inv.vpn is None:
        raise VpnRotationError("there is no VPN in the inventory (all.vars.vpn): no key pair to rotate")
    for c in [c for c in clients if c.connection == "none"]:
        (folder(inv, c) / VPN_KEY).unlink(missing_ok=True)
        vpn_keys.record(inv.pki_dir, "clients", c.name, vpn_keys.local_pair(folder(inv, c) / VPN_KEY))
    lost = _client_ends(inv, clients, Options(roles=frozenset({VPN_CLIENT, "ci_runner"}),
                                             renew=frozenset(c.name for c in clients)), rep, res, "new key pair")
    results = provision(inv, inv.select(None), Options(roles=ACCESS), Reporter(quiet=True))
    report_firewall(rep, res, results, "the tunnel's peers: the new keys in, the old ones out")
    _client_ends(inv, [c for c in clients if c.name not in lost and c.connection != "none"],
                 Options(roles=frozenset({VPN_CLIENT})), rep, res, "tunnels up again")
    return res


def rotate_host_keys(inv: Inventory, hosts: list[BuildHost], rep: Reporter) -> HostResult:
    """New key pairs for these build hosts, made on each, then every client's peer for them."""
    res = HostResult("rotation")
    if inv.vpn is None:
        raise VpnRotationError("there is no VPN in the inventory (all.vars.vpn): no key pair to rotate")
    results = provision(inv, hosts, Options(roles=ACCESS, renew=frozenset(h.name for h in hosts)),
                        Reporter(quiet=True))
    report_firewall(rep, res, results, "new key pair, in force")
    if any(r.failed for r in results):
        raise VpnRotationError("a host could not make its new key pair (see above): fix it and re-run")
    names = {h.name for h in hosts}
    clients = [c for c in inv.clients.values() if names & {h.name for h in inv.hosts_for(c)}]
    lost = _client_ends(inv, clients, Options(roles=frozenset({VPN_CLIENT, "ci_runner"})), rep, res,
                        "the hosts' new keys")
    for name in lost:
        rep.step(res, "vpn", f"{name}: stranded until reached", "failed",
                 f"it still has the old key of {', '.join(sorted(names))}: run `invoke update-clients` when it "
                 f"is back")
    return res
