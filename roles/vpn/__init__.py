"""vpn: the build host's end of the WireGuard tunnel (all.vars.vpn; docs/vpn.md). One interface with the host's
own key pair, its tunnel address and UDP port, and one peer per client that may build on the host (its public key,
learned when add-client made it on the client, and its one tunnel address). The firewall opens the BuildKit port
on this interface only; mutual TLS goes on inside it. Build hosts are not peers of each other: nothing they do
travels between them (a project's cache moves through the registry). Without a VPN in the inventory, a tunnel
left from before is taken away."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from buildkit_ops.engine.contract import Context, Options, Role, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.model import Vpn
from buildkit_ops.pki import vpn_keys
from buildkit_ops.roles.vpn import conf, tunnel


@dataclass(frozen=True)
class VpnInput:
    vpn: Vpn | None
    address: str | None                                 # the host's in the tunnel
    peers: list[conf.Peer] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)    # clients whose public key is not known yet
    renew: bool = False                                 # its key pair made anew (rotate-certs --vpn-keys)


def prepare(inv: Inventory, host: BuildHost, renew: bool = False) -> VpnInput:
    if inv.vpn is None:
        return VpnInput(None, None)
    peers, unknown = [], []
    for c in sorted(inv.clients.values(), key=lambda c: c.name):
        if host.name not in {h.name for h in inv.hosts_for(c)} or c.vpn_address is None:
            continue
        key = vpn_keys.read(inv.pki_dir, "clients", c.name)
        if key is None:
            unknown.append(c.name)
        else:
            peers.append(conf.Peer(c.name, key, c.vpn_address))
    return VpnInput(inv.vpn, host.vpn_address, peers, unknown, renew)


Ctx = Context[BuildHost, VpnInput]


class VpnRole(Role[BuildHost, VpnInput, tunnel.TunnelFacts]):
    name = "vpn"
    handlers = {tunnel.SYNC: tunnel.Sync()}
    verify_title = "tunnel up"

    parse = staticmethod(tunnel.parse)

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> VpnInput:
        return prepare(inv, target, target.name in options.renew)

    def fact_env(self, target: BuildHost) -> dict[str, str]:
        return dict(tunnel.ENV)

    def files(self, ctx: Ctx) -> list[File]:
        i = ctx.input
        return tunnel.conf_files(i.vpn, i.address, i.peers, i.vpn.port if i.vpn else None)

    def plan(self, ctx: Ctx, facts: tunnel.TunnelFacts, files: dict[str, FileState]) -> list[Step]:
        if ctx.input.vpn is None:
            return tunnel.remove_steps("vpn", facts)
        steps = tunnel.steps("vpn", facts, self.managed(ctx)[0], files, ctx.input.renew)
        if ctx.input.unknown:
            steps.append(Step("vpn", "clients without a key yet", False,
                              f"{', '.join(ctx.input.unknown)}: `invoke add-client NAME` makes it on the client"))
        return steps

    def info(self, facts: tunnel.TunnelFacts) -> dict[str, Any]:
        if not facts.public_key:
            return {}
        return {"vpn": {"public_key": facts.public_key, "port": facts.port, "active": facts.active,
                        "peers": [{"public_key": p.public_key, "endpoint": p.endpoint, "handshake": p.handshake,
                                   "received": p.received, "sent": p.sent} for p in facts.peers]}}

    def verify(self, ctx: Ctx, facts: tunnel.TunnelFacts, sess: Any, probe: Any, restarted: bool) -> str | None:
        if ctx.input.vpn is None:
            return None
        return f"{tunnel.verify_up(sess, ctx.input.address, len(ctx.input.peers))}, UDP {ctx.input.vpn.port}"


ROLE = VpnRole()
