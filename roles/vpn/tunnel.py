"""What a WireGuard tunnel needs on a machine, a build host's or a client's alike: its facts, and the steps from
nothing to an interface up with its configuration (the tools; wireguard-go and a tun device where the kernel has
no WireGuard; a key pair made on the machine, the private key never leaving it; the configuration; the service).
A changed configuration reaches a running tunnel through `wg syncconf`: peers added or removed, no restart, no
dropped tunnel."""
from __future__ import annotations

from dataclasses import dataclass, field

from buildkit_ops.engine.contract import Handler, HandlerFailed, HandlerResult, Outcome, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.steps import file_steps, package_step
from buildkit_ops.pki.vpn_keys import is_key

IFACE = "bkops-vpn"
DIR = "/etc/wireguard"
CONF = f"{DIR}/{IFACE}.conf"
KEY = f"{DIR}/{IFACE}.key"
UNIT = f"wg-quick@{IFACE}"
SYNC = "sync vpn peers"
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
                       peers)


def steps(role: str, facts: TunnelFacts, conf: File, states: dict[str, FileState]) -> list[Step]:
    missing = [] if {"wg", "wg-quick"} <= facts.tools else ["wireguard-tools"]
    userspace = not facts.kernel
    if userspace and "wireguard-go" not in facts.tools:
        missing.append("wireguard-go")
    out = [package_step(role, "WireGuard", missing, "kernel module" if facts.kernel else "wireguard-go (user space)")]
    if userspace and not facts.tun:
        # (wireguard-go needs the tun device; a container made without one, as the lab's machines are, lacks it)
        out.append(Step(role, "tun device", True, "made: /dev/net/tun", script="mkdir -p /dev/net\n"
                        "[ -c /dev/net/tun ] || mknod -m 0600 /dev/net/tun c 10 200\n"))
    if facts.public_key:
        out.append(Step(role, "key pair", False, f"public key {facts.public_key}"))
    else:
        out.append(Step(role, "key pair", True, "made here; the private key never leaves this machine",
                        script=f"umask 077\nmkdir -p {DIR}\n[ -s {KEY} ] || {{ wg genkey > {KEY}.tmp && "
                               f"mv {KEY}.tmp {KEY}; }}\n"))
    out += file_steps(role, [conf], states, [SYNC] if facts.active else [], name=lambda f: f.path)
    if facts.active:
        out.append(Step(role, IFACE, False, "up"))
    else:
        out.append(Step(role, IFACE, True, "start (and at every boot)",
                        script=f"systemctl enable -q {UNIT}\nsystemctl restart {UNIT}\n", notify=[SYNC]))
    return out


def remove_steps(role: str, facts: TunnelFacts) -> list[Step]:
    """The tunnel of a machine that no longer has one (the VPN switched off, a client removed)."""
    if not facts.active and not facts.public_key:
        return [Step(role, IFACE, False, "none")]
    return [Step(role, IFACE, True, "removed (interface, configuration, key pair)",
                 script=f"systemctl disable -q --now {UNIT} 2>/dev/null || true\nrm -f {CONF} {KEY}\n")]


class Sync(Handler[object, object]):
    """A running tunnel takes its new peers in place: no restart, no dropped tunnel."""
    name = SYNC
    outcome = Outcome.IN_PLACE

    def script(self, ctx: object) -> str:
        return (f"T=$(mktemp)\nwg-quick strip {IFACE} > \"$T\" && wg syncconf {IFACE} \"$T\"\nrc=$?\nrm -f \"$T\"\n"
                f"[ $rc = 0 ] || exit $rc\necho @@vpn_peers\nwg show {IFACE} dump | tail -n +2\n"
                f"echo @@vpn_public\nwg pubkey < {KEY}\necho @@vpn_active\nsystemctl is-active {UNIT}\n")

    def result(self, ctx: object, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        if rc != 0:
            raise HandlerFailed(f"the tunnel {IFACE} did not take its peers: see `journalctl -u {UNIT}`",
                                (err or "").strip()[-400:])
        n = len((out.get("vpn_peers") or "").splitlines())
        return HandlerResult(f"peers in force ({n}): no restart, no tunnel dropped", [], out)
