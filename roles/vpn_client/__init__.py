"""vpn_client: the client's end of the WireGuard tunnel (all.vars.vpn; docs/vpn.md). The client makes its own key
pair (the private key never leaves it; add-client learns the public key from its facts and gives it to the build
hosts), and gets one interface with its tunnel address and one peer per build host it may build on (the host's
public key, its address and UDP port, and a keepalive, so that a client behind NAT or on a new address goes on
building with no operator action: WireGuard follows a peer that roams). Its builder's nodes are the hosts' tunnel
addresses (the inventory gives each host's as its client_address). A removed client's tunnel is taken away."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from buildkit_ops.engine.contract import Context, Options, Role, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.inventory.model import Vpn
from buildkit_ops.roles.vpn.exports import conf, tunnel
from buildkit_ops.roles.vpn_client.exports import NAME


@dataclass(frozen=True)
class ClientVpnInput:
    vpn: Vpn | None                                      # None: no tunnel wanted (no VPN, or the client removed)
    address: str | None
    peers: list[conf.Peer] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)     # hosts whose public key is not known yet
    renew: bool = False                                  # its key pair made anew (rotate-certs --vpn-keys)


def prepare(inv: Inventory, client: Client, options: Options) -> ClientVpnInput:
    if inv.vpn is None or client.name in options.remove or client.vpn_address is None:
        return ClientVpnInput(None, None)
    peers, unknown = conf.host_peers(inv, client)
    return ClientVpnInput(inv.vpn, client.vpn_address, peers, unknown, renew=client.name in options.renew)


Ctx = Context[Client, ClientVpnInput]


class VpnClientRole(Role[Client, ClientVpnInput, tunnel.TunnelFacts]):
    name = NAME
    targets = "client"
    handlers = {tunnel.SYNC: tunnel.Sync()}
    verify_title = "tunnel up"

    parse = staticmethod(tunnel.parse)

    @property
    def facts_file(self) -> str:
        """The vpn role's facts.sh: a tunnel is a tunnel, on either end."""
        return (Path(tunnel.__file__).parent / "facts.sh").read_text()

    def applies(self, target: Client) -> bool:
        return target.connection != "none"

    def prepare(self, inv: Inventory, target: Client, options: Options) -> ClientVpnInput:
        return prepare(inv, target, options)

    def fact_env(self, target: Client) -> dict[str, str]:
        return dict(tunnel.ENV)

    def files(self, ctx: Ctx) -> list[File]:
        return tunnel.conf_files(ctx.input.vpn, ctx.input.address, ctx.input.peers)

    def plan(self, ctx: Ctx, facts: tunnel.TunnelFacts, files: dict[str, FileState]) -> list[Step]:
        if ctx.input.vpn is None:
            return tunnel.remove_steps("vpn_client", facts)
        steps = tunnel.steps("vpn_client", facts, self.managed(ctx)[0], files, ctx.input.renew)
        # (a key pair made in this run, new or anew, is no host's peer yet: add-client and rotate-certs tell the
        # hosts, then run this role again, which brings each tunnel up before the builder needs it)
        if facts.public_key and not ctx.input.renew:
            steps += tunnel.reach_steps("vpn_client", facts, [(p.name, p.public_key, p.address)
                                                              for p in ctx.input.peers])
        if ctx.input.unknown:
            steps.append(Step("vpn_client", "build hosts without a key yet", False,
                              f"{', '.join(ctx.input.unknown)}: `invoke provision` makes it on the host"))
        return steps

    def info(self, facts: tunnel.TunnelFacts) -> dict[str, Any]:
        return {"vpn_public_key": facts.public_key} if facts.public_key else {}

    def verify(self, ctx: Ctx, facts: tunnel.TunnelFacts, sess: Any, probe: Any, restarted: bool) -> str | None:
        if ctx.input.vpn is None:
            return None
        return tunnel.verify_up(sess, ctx.input.address, len(ctx.input.peers))


ROLE = VpnClientRole()
