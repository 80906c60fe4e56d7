"""status's view of a host's VPN tunnel (docs/vpn.md): its peers, each named by the public key add-client kept
for it, with its latest handshake and bytes; and what is wrong there (the tunnel down, a peer that is no client of
the inventory, a client that has no peer)."""
from __future__ import annotations

import datetime as dt

from buildkit_ops.flows.status_tree import HostStatus, Status, TunnelPeer, VpnStatus
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.pki import vpn_keys
from buildkit_ops.roles.vpn.exports import tunnel

# A peer whose latest handshake is older than this has no live tunnel (WireGuard renews one every 2 minutes while
# it carries traffic, and a client's keepalive keeps it carrying some).
STALE_SECONDS = 180


def read(inv: Inventory, h: BuildHost, facts: tunnel.TunnelFacts, now: dt.datetime) -> VpnStatus | None:
    if inv.vpn is None:
        return None
    names = {vpn_keys.read(inv.pki_dir, "clients", c.name): c.name for c in inv.clients.values()}
    peers = [TunnelPeer(names.get(p.public_key), p.public_key, p.endpoint if p.endpoint != "(none)" else None,
                        int(now.timestamp()) - p.handshake if p.handshake else None, p.received, p.sent)
             for p in facts.peers]
    wanted = sorted(c.name for c in inv.clients.values() if c.connection != "none"
                    and h.name in {x.name for x in inv.hosts_for(c)})
    return VpnStatus(facts.active, h.vpn_address, facts.port, peers,
                     sorted(set(wanted) - {p.client for p in peers if p.client}))


def judge(h: BuildHost, hs: HostStatus, st: Status) -> None:
    v = hs.vpn
    if v is None:
        return
    fix = f"run `invoke provision --host {h.name}`"
    if not v.up:
        st.failures.append(f"{h.name}: the VPN's tunnel is down: no client can build there; {fix}")
    for p in v.peers:
        if p.client is None:
            st.warnings.append(f"{h.name}: the tunnel has a peer that is no client of the inventory (public key "
                               f"{p.public_key}): {fix} to take it away")
    if v.without_peer:
        st.warnings.append(f"{h.name}: client(s) {', '.join(v.without_peer)} have no peer in the tunnel: run "
                           f"`invoke add-client NAME` for each")
