"""What a WireGuard tunnel needs on a machine, a build host's or a client's alike: its facts, and the steps from
nothing to an interface up with its configuration (the tools; wireguard-go and a tun device where the kernel has
no WireGuard; a key pair made on the machine, the private key never leaving it; the configuration; the service).
A changed configuration reaches a running tunnel through `wg syncconf`: peers added or removed, no restart, no
dropped tunnel."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from buildkit_ops.engine.contract import Handler, HandlerFailed, HandlerResult, Outcome, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.steps import file_steps, package_step
from buildkit_ops.inventory.model import Vpn
from buildkit_ops.pki.vpn_keys import is_key
from buildkit_ops.roles.vpn import conf

IFACE = "bkops-vpn"
DIR = "/etc/wireguard"
CONF = f"{DIR}/{IFACE}.conf"
KEY = f"{DIR}/{IFACE}.key"
UNIT = f"wg-quick@{IFACE}"
SYNC = "sync vpn peers"
LIVE_SECONDS = 180
ENV = {"BKOPS_VPN_IF": IFACE, "BKOPS_VPN_KEY": KEY}


@dataclass(frozen=True)
class PeerState:
    public_key: str
    endpoint: str              # (none) until a handshake
    allowed: str
    handshake: int             # unix time of the latest handshake, 0: never
    received: int              # bytes
    sent: int


@dataclass
class TunnelFacts:
    tools: set[str] = field(default_factory=set)
    kernel: bool = False
    tun: bool = False
    public_key: str = ""
    active: bool = False
    port: int | None = None
    peers: list[PeerState] = field(default_factory=list)
    in_force: str = ""         # the public key of the private key the interface holds ("": none)
    now: int = 0               # the machine's clock (unix time), for the handshakes' ages

    def live(self, public_key: str) -> bool:
        """A peer with a recent handshake (a client's keepalive renews it every two minutes)."""
        return any(p.public_key == public_key and p.handshake and self.now - p.handshake < LIVE_SECONDS
                   for p in self.peers)


def parse(sections: dict[str, str]) -> TunnelFacts:
    peers = []
    for line in (sections.get("vpn_peers") or "").splitlines():
        f = line.split("\t")
        if len(f) >= 7 and is_key(f[0]) and f[4].isdigit() and f[5].isdigit() and f[6].isdigit():
            peers.append(PeerState(f[0], f[2], f[3], int(f[4]), int(f[5]), int(f[6])))
    public = (sections.get("vpn_public") or "").strip()
    port = (sections.get("vpn_port") or "").strip()
    return TunnelFacts(set((sections.get("vpn_tools") or "").split()), (sections.get("vpn_kernel") or "").strip()
                       == "yes", (sections.get("vpn_tun") or "").strip() == "yes", public if is_key(public) else "",
                       (sections.get("vpn_active") or "").strip() == "active", int(port) if port.isdigit() else None,
                       peers, (sections.get("vpn_in_force") or "").strip(),
                       int(now) if (now := (sections.get("vpn_now") or "").strip()).isdigit() else 0)


def conf_files(vpn: Vpn | None, address: str | None, peers: list[conf.Peer],
               listen_port: int | None = None) -> list[File]:
    """The tunnel's configuration on a machine of the VPN (none without one)."""
    if vpn is None or address is None:
        return []
    prefix = ipaddress.ip_network(vpn.subnet).prefixlen
    return [File(CONF, conf.render(address, prefix, KEY, peers, listen_port), 0o600)]


def steps(role: str, facts: TunnelFacts, conf_file: File, states: dict[str, FileState],
          renew: bool = False) -> list[Step]:
    missing = [] if {"wg", "wg-quick"} <= facts.tools else ["wireguard-tools"]
    userspace = not facts.kernel
    if userspace and "wireguard-go" not in facts.tools:
        missing.append("wireguard-go")
    out = [package_step(role, "WireGuard", missing, "kernel module" if facts.kernel else "wireguard-go (user space)")]
    if userspace and not facts.tun:
        # (wireguard-go needs the tun device; a container made without one, as the lab's machines are, lacks it)
        out.append(Step(role, "tun device", True, "made: /dev/net/tun", script="mkdir -p /dev/net\n"
                        "[ -c /dev/net/tun ] || mknod -m 0600 /dev/net/tun c 10 200\n"))
    if facts.public_key and renew:
        # the new key in force at once (the peers that knew the old one learn the new one in the same rotation)
        out.append(Step(role, "key pair", True, "made anew; the old one is gone",
                        script=f"umask 077\nwg genkey > {KEY}.tmp && mv {KEY}.tmp {KEY}\n"
                               + (f"wg set {IFACE} private-key {KEY}\n" if facts.active else ""),
                        notify=[SYNC] if facts.active else []))
    elif facts.public_key:
        out.append(Step(role, "key pair", False, f"public key {facts.public_key}"))
    else:
        out.append(Step(role, "key pair", True, "made here; the private key never leaves this machine",
                        script=f"umask 077\nmkdir -p {DIR}\n[ -s {KEY} ] || {{ wg genkey > {KEY}.tmp && "
                               f"mv {KEY}.tmp {KEY}; }}\n"))
    out += file_steps(role, [conf_file], states, [SYNC] if facts.active else [], name=lambda f: f.path)
    if facts.active and facts.public_key and facts.in_force != facts.public_key:
        out.append(Step(role, IFACE, True, "up without its key: key put in force",
                        script=f"wg set {IFACE} private-key {KEY}\n"))
    elif facts.active:
        out.append(Step(role, IFACE, False, "up"))
    else:
        out.append(Step(role, IFACE, True, "start (and at every boot)",
                        script=f"systemctl enable -q {UNIT}\nsystemctl restart {UNIT}\n", notify=[SYNC]))
    return out


def reach_steps(role: str, facts: TunnelFacts, peers: list[tuple[str, str, str]]) -> list[Step]:
    """A client's tunnel to each build host carries traffic before its builder needs it: one without a recent
    handshake (just made, or the host took this client as a peer only now) is brought up by sending through it,
    for at most 20 s; a host that does not answer yet is said, not failed (the builder's own check follows).
    peers: (host name, public key, tunnel address)."""
    out = []
    for name, key, address in peers:
        if facts.live(key):
            out.append(Step(role, f"tunnel to {name}", False, "live"))
            continue
        out.append(Step(role, f"tunnel to {name}", True, f"brought up ({address})",
                        script=f"for i in $(seq 1 20); do ping -c1 -W1 {address} >/dev/null 2>&1 && exit 0; done\n"
                               f"echo '@@note {name} does not answer through the tunnel yet' >&3 2>/dev/null; true\n"))
    return out


def remove_steps(role: str, facts: TunnelFacts) -> list[Step]:
    """The tunnel of a machine that no longer has one (the VPN switched off, a client removed)."""
    if not facts.active and not facts.public_key:
        return [Step(role, IFACE, False, "none")]
    return [Step(role, IFACE, True, "removed (interface, configuration, key pair)",
                 script=f"systemctl disable -q --now {UNIT} 2>/dev/null || true\nrm -f {CONF} {KEY}\n")]


def verify_up(sess: Any, address: str | None, peers: int) -> str:
    """The interface is up with the machine's tunnel address (the detail of the roles' verify)."""
    rc, out, _ = sess.run(f"ip -o addr show dev {IFACE}")
    if rc != 0 or f" {address}/" not in out:
        raise HandlerFailed(f"the tunnel {IFACE} is not up with {address}: see `journalctl -u {UNIT}`")
    return f"{IFACE} {address}, {peers} peer(s)"


class Sync(Handler[object, object]):
    """A running tunnel takes its new peers in place: no restart, no dropped tunnel."""
    name = SYNC
    outcome = Outcome.IN_PLACE

    def script(self, ctx: object) -> str:
        # syncconf sets every interface value its file has and clears the ones it lacks: the private key goes in
        # the file it reads (a 0600 file in memory, removed at once; the key is never a command's argument)
        return (f"umask 077\nK=$(mktemp -p /run)\nT=$(mktemp -p /run)\n"
                f"{{ printf 'PrivateKey = '; cat {KEY}; }} > \"$K\"\n"
                f"wg-quick strip {IFACE} | sed \"/^\\[Interface\\]/r $K\" > \"$T\" && wg syncconf {IFACE} \"$T\"\n"
                f"rc=$?\nrm -f \"$K\" \"$T\"\n[ $rc = 0 ] || exit $rc\n"
                f"echo @@vpn_peers\nwg show {IFACE} dump | tail -n +2\necho @@vpn_public\nwg pubkey < {KEY}\n"
                f"echo @@vpn_in_force\nwg show {IFACE} public-key\necho @@vpn_active\nsystemctl is-active {UNIT}\n")

    def result(self, ctx: object, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        if rc != 0:
            raise HandlerFailed(f"the tunnel {IFACE} did not take its peers: see `journalctl -u {UNIT}`",
                                (err or "").strip()[-400:])
        n = len((out.get("vpn_peers") or "").splitlines())
        return HandlerResult(f"peers in force ({n}): no restart, no tunnel dropped", [], out)
