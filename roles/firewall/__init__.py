"""firewall: ufw denies inbound by default, over IPv4 and IPv6; SSH is allowed
before anything else (so the operator is never locked out, with zero clients
too, or if a run stops half-way); the BuildKit port opens only to the
inventory's clients (in private mode: on the host's private address only),
whose addresses are one kernel set per family (client_set.py: one load for a
team, not a ufw rule each).

buildkitd runs with host networking, so Docker adds no NAT rule that would
bypass ufw (see LAB-NOTES: a published port is reachable by everyone).
Only rules whose comment starts with "buildkit-ops" are ever changed, with one
exception: a rule of someone else's that opens the BuildKit port (say a
hand-made `ufw allow 1234/tcp`) defeats the allowlist, so it fails the run
until `provision --prune-clients` deletes it (or the operator narrows it).
"""
from __future__ import annotations

import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from buildkit_ops.engine.contract import Context, Options, Outcome, PlanError, Role, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command
from buildkit_ops.engine.steps import file_steps, package_step
from buildkit_ops.inventory import BuildHost, Inventory, values
from buildkit_ops.roles.firewall import client_set
from buildkit_ops.roles.firewall.client_set import Member
from buildkit_ops.roles.vpn import exports as vpn

TAG = "buildkit-ops"
CLIENT_RULE = re.compile(r"ufw allow from (\S+) to (\S+) port (\d+) proto tcp comment '" + TAG + r" client (\S+)'")
ANY = "any"   # a client rule's destination: every address of the host (private mode: its private address)
VPN_TAG = f"{TAG} vpn"


class FirewallConflict(PlanError):
    """Rules that are not ours open the BuildKit port to more than the clients."""


@dataclass
class FirewallFacts:
    present: bool = False
    active: bool = False
    defaults_ok: bool = False      # deny incoming, allow outgoing
    ipv6: str = "yes"              # IPV6= of /etc/default/ufw ("yes": rules apply to IPv6 too)
    rules: list[str] = field(default_factory=list)   # `ufw show added` lines
    ipset: bool = False            # the ipset command (client_set.py)
    members: set[Member] = field(default_factory=set)     # the clients' set as written on the host
    kernel_set: set[str] = field(default_factory=set)     # its addresses as the kernel has them
    set_rules: list[str] = field(default_factory=list)    # our rules letting the set in: "CHAIN COMMENT"
    hooked: bool = False           # ufw's after.init runs our hook

    def let_in(self, port: int, wide_ok: Collection[str] = ()) -> set[str]:
        """The addresses let in to the port: the set's (if one of our rules lets it in to that port) and those of
        our per-client ufw rules of before the set (until a provision moves them into it)."""
        by_set = any(str(port) in r.split(":")[1].split(",") for r in self.set_rules if r.count(":") >= 2)
        return (self.kernel_set if by_set else set()) | {a for (a, _d, p, _n) in self.client_rules(wide_ok)
                                                         if p == port}

    def client_rules(self, wide_ok: Collection[str] = ()) -> dict[tuple[str, str, int, str], str]:
        """Our client rules: (address, destination, port, client name) -> rule. A rule is ours only if it is exactly
        one we would write: a comment that says `buildkit-ops` proves nothing (anyone can write one, for 0.0.0.0/0
        too). A network wider than a client may be is ours only for the clients allowed one (`wide_ok`, their
        addresses)."""
        out = {}
        for r in self.rules:
            m = CLIENT_RULE.fullmatch(r)
            if m and _would_write(m.group(1), m.group(2), int(m.group(3)), m.group(4), wide_ok) == r:
                out[(m.group(1), m.group(2), int(m.group(3)), m.group(4))] = r
        return out


def _would_write(address: str, dest: str, port: int, name: str, wide_ok: Collection[str]) -> str | None:
    """The rule this role would write for that client, or None if no client could have those values."""
    try:
        if values.client_source(address) != address or not re.fullmatch(values.NAME, name) or not 1 <= port <= 65535:
            return None
        if dest != ANY and values.private_ip(dest) != dest:
            return None
    except values.BadValue:
        return None
    if values.too_wide(address) and address not in wide_ok:
        return None
    return ufw(client_rule(address, port, name, dest)).strip()


def parse(sections: dict[str, str]) -> FirewallFacts:
    status = sections.get("ufw_status", "")
    return FirewallFacts(present=sections.get("ufw_present") == "yes", active="Status: active" in status,
                         defaults_ok="deny (incoming)" in status and "allow (outgoing)" in status,
                         ipv6=sections.get("ufw_ipv6", "yes") or "",
                         rules=[r.strip() for r in sections.get("ufw_rules", "").splitlines() if r.strip()],
                         ipset=sections.get("ipset_present") == "yes",
                         members=client_set.parse_members(sections.get("fw_members", "")),
                         kernel_set={_network(a) for a in sections.get("fw_set", "").split()},
                         set_rules=[r.strip() for r in sections.get("fw_set_rules", "").splitlines() if r.strip()],
                         hooked=sections.get("fw_hooked") == "yes")


def _network(address: str) -> str:
    """An address as the kernel's set lists it, as client_source writes it (a host without its /32)."""
    try:
        return values.client_source(address)
    except values.BadValue:
        return address


def ssh_rule(ssh_port: int) -> list[str]:
    return ["allow", f"{ssh_port}/tcp", "comment", f"{TAG} ssh"]


def client_rule(address: str, port: int, name: str, dest: str = ANY) -> list[str]:
    return ["allow", "from", address, "to", dest, "port", str(port), "proto", "tcp", "comment", f"{TAG} client {name}"]


def ufw(words: list[str]) -> str:
    return command("ufw", *words) + "\n"


def _ports_cover(spec: str, port: int) -> bool:
    """'1234', '1234/tcp', '1000:2000/tcp', '22,1234' -> does it include port (over TCP)?"""
    ports, _, proto = spec.partition("/")
    if proto and proto not in ("tcp", "any"):
        return False
    for part in ports.split(","):
        lo, _, hi = part.partition(":")
        if lo.isdigit() and (hi or lo).isdigit() and int(lo) <= port <= int(hi or lo):
            return True
    return False


def _rule_words(rule: str) -> list[str]:
    """`ufw allow 1234/tcp comment 'x'` -> ['allow', '1234/tcp'] (what `ufw delete` takes)."""
    try:
        words = shlex.split(rule)[1:]
    except ValueError:
        return []
    return words[:words.index("comment")] if "comment" in words else words


def opens_port(rule: str, port: int) -> bool:
    """Does this `ufw show added` line let anyone in to port/tcp? (allow or limit, inbound, that port or all)"""
    words = _rule_words(rule)
    if not words or words[0] not in ("allow", "limit"):
        return False
    words = words[1:]
    if words[:1] == ["out"]:
        return False
    if words[:1] == ["in"]:
        words = words[1:]
    if words[:1] == ["on"]:
        words = words[2:]
    if len(words) == 1:  # simple syntax: `allow 1234/tcp`, `allow 1000:2000`, or an application profile
        return _ports_cover(words[0], port)
    if "proto" in words and words[words.index("proto") + 1:][:1] not in (["tcp"], ["any"]):
        return False
    if "to" in words:
        dest = words[words.index("to") + 1:]
        if "port" in dest:
            return _ports_cover(dest[dest.index("port") + 1], port)
        if "app" in dest:
            return False
        return True  # to any address, every port
    return "from" in words  # `allow from X [port P]`: to every port here (a source port is the client's to pick)


@dataclass(frozen=True)
class Tunnel:
    """The VPN's rules: the BuildKit port on the tunnel's interface (WireGuard lets in only a peer's own tunnel
    address, so that is every client), and the tunnel's UDP port from `allow_from` (empty: anywhere)."""
    interface: str
    udp_port: int
    allow_from: tuple[str, ...] = ()

    def rules(self, port: int) -> list[list[str]]:
        comment = ["comment", VPN_TAG]
        udp = ([["allow", "from", a, "to", "any", "port", str(self.udp_port), "proto", "udp", *comment]
                for a in self.allow_from] if self.allow_from else [["allow", f"{self.udp_port}/udp", *comment]])
        return [["allow", "in", "on", self.interface, "to", "any", "port", str(port), "proto", "tcp", *comment], *udp]


def vpn_rules(facts: FirewallFacts) -> list[str]:
    """Our VPN rules on the host (the comment, and a shape this role writes)."""
    shapes = (rf"ufw allow in on {re.escape(vpn.tunnel.IFACE)} to any port \d+ proto tcp", r"ufw allow \d+/udp",
              r"ufw allow from \S+ to any port \d+ proto udp")
    return [r for r in facts.rules if r.endswith(f" comment '{VPN_TAG}'")
            and any(re.fullmatch(f"{shape} comment '{VPN_TAG}'", r) for shape in shapes)]


def foreign_openings(facts: FirewallFacts, port: int, wide_ok: Collection[str] = ()) -> list[str]:
    """Rules that open the BuildKit port and are not exactly one of ours."""
    # (our VPN rules: the tunnel's, also of an earlier setting or with the VPN switched off, until deleted)
    ours = set(facts.client_rules(wide_ok).values()) | set(vpn_rules(facts))
    return [r for r in facts.rules if r not in ours and opens_port(r, port)]


@dataclass(frozen=True)
class FirewallInput:
    """Who may reach the BuildKit port: client name -> the address its connections come from; and the rules of
    clients no longer in the inventory to close (True: all of them, with rules of others opening the port); with a
    VPN, the tunnel's rules instead of the clients' (theirs are closed: the port opens inside the tunnel only)."""
    clients: dict[str, str]
    drop: bool | frozenset[str] = False
    tunnel: Tunnel | None = None
    ci_port: int | None = None      # the CI exchange's, open to the clients and the CI trusts' networks


def plan(facts: FirewallFacts, ssh_port: int, port: int, clients: dict[str, str],
         drop: bool | frozenset[str] = False, dest: str = ANY, tunnel: Tunnel | None = None,
         states: dict[str, FileState] | None = None, ci_port: int | None = None) -> list[Step]:
    """clients: name -> address of every client that may reach `port` (on `dest`: the host's private address in
    private mode, else any). A rule for a client that is not in the inventory (or no longer at that address) is
    kept (a client is never dropped by accident) unless drop is True (`provision --prune-clients`) or names it
    (`remove-client NAME`, `add-client NAME --address NEW`); one of a client still there for another destination
    (private mode switched on or off, a new private address) is replaced."""
    missing = [p for p, there in (("ufw", facts.present), ("ipset", facts.ipset)) if not there]
    if missing:   # (no ufw: none of its facts are; ipset alone: the set was never made)
        fresh = FirewallFacts(present=True, ipset=True) if not facts.present else replace(facts, ipset=True)
        return [package_step("firewall", f"{' and '.join(missing)} installed", missing)] + \
            plan(fresh, ssh_port, port, clients, drop, dest, tunnel, states, ci_port)
    rules, active = facts.rules, facts.active
    steps: list[Step] = []

    foreign = foreign_openings(facts, port, clients.values())
    if foreign and drop is not True:
        raise FirewallConflict(
            f"ufw rules not made by buildkit-ops open port {port}/tcp beyond the clients: "
            + "; ".join(foreign) + f". Re-run with --prune-clients to delete them, or narrow them so they do not "
            f"cover port {port}")

    want_ssh = ufw(ssh_rule(ssh_port))
    if facts.ipv6 == "yes":
        steps.append(Step("firewall", "IPv6 filtered too", False, "IPV6=yes"))
    else:
        # Without IPV6=yes ufw does not apply its rules to IPv6 (an active ufw then drops all of it, our SSH rule
        # included; an inactive one nothing). After the reload ufw manages ip6tables, and the SSH rule is added
        # again so that its IPv6 twin exists (rules added under IPV6=no are IPv4 only).
        steps.append(Step("firewall", "IPv6 filtered too", True, f"IPV6={facts.ipv6 or 'unset'} -> yes",
                          script="if grep -q '^IPV6=' /etc/default/ufw; then sed -i 's/^IPV6=.*/IPV6=yes/' "
                                 "/etc/default/ufw; else echo IPV6=yes >> /etc/default/ufw; fi\n"
                                 + ("ufw reload >/dev/null\n" if active else "") + want_ssh))

    if want_ssh.strip() in rules:
        steps.append(Step("firewall", f"ssh {ssh_port}/tcp allowed", False))
    else:
        steps.append(Step("firewall", f"ssh {ssh_port}/tcp allowed", True, "allow SSH first", script=want_ssh))

    steps += client_steps(facts, port, clients, drop, dest, tunnel, states or {}, ci_port)
    if foreign:  # only with --prune-clients (drop is True)
        steps.append(Step("firewall", f"rules of others opening port {port}/tcp", True,
                          "deleted: " + "; ".join(foreign),
                          script="".join(command("ufw", "delete", *_rule_words(r)) + "\n" for r in foreign)))

    if tunnel is not None or vpn_rules(facts):
        steps.append(tunnel_step(facts, port, tunnel))

    defaults_ok = facts.defaults_ok
    if defaults_ok and active:
        steps.append(Step("firewall", "ufw active, inbound denied by default", False))
    else:
        script = ""
        if not defaults_ok:
            script += "ufw default deny incoming\nufw default allow outgoing\n"
        if not active:
            script += "ufw --force enable\n"
        steps.append(Step("firewall", "ufw active, inbound denied by default", True,
                          "enable" if not active else "set defaults", script=script))
    return steps


def client_steps(facts: FirewallFacts, port: int, clients: dict[str, str], drop: bool | frozenset[str], dest: str,
                 tunnel: Tunnel | None, states: dict[str, FileState], ci_port: int | None = None) -> list[Step]:
    """The clients' set (client_set.py): its hook and members files, the hook in ufw's after.init, then the set and
    our rules as the kernel has them, loaded in one run of the hook when any differs. The per-client ufw rules of
    before the set move into it (deleted once the set lets their addresses in)."""
    old = facts.client_rules(clients.values())
    have = facts.members | {Member(n, a) for (a, _d, _p, n) in old}
    want = {Member(n, a) for n, a in clients.items()}
    stale = sorted(have - want)
    gone = [m for m in stale if drop is True or (drop and m.name in drop) or m.name in clients]   # (or moved)
    kept = [m for m in stale if m not in gone]
    files = [File(client_set.HOOK, client_set.hook_script(port, dest, ci_port).encode(), 0o700, dir_mode=0o700),
             File(client_set.MEMBERS, client_set.members_text(want | set(kept)).encode(), 0o600, dir_mode=0o700)]
    steps = file_steps("firewall", files, states, [], name=lambda f: f.path)
    steps.append(Step("firewall", "ufw runs the clients' hook", not facts.hooked,
                      "" if facts.hooked else f"{client_set.AFTER_INIT}: one line",
                      script="" if facts.hooked else client_set.hook_install_script()))
    families = [f for f in (4, 6) if client_set.rule(f, port, dest) and (f == 4 or facts.ipv6 == "yes")]
    rules = sorted(f"{client_set.CHAIN[f]} {client_set.rule_comment(port, dest, ci_port)}" for f in families)
    in_kernel = facts.kernel_set == {m.address for m in want | set(kept)} and \
        (not facts.active or sorted(facts.set_rules) == rules)
    added = sorted(want - have)
    detail = ", ".join([f"+{m.name} ({m.address})" for m in added] + [f"-{m.name} ({m.address})" for m in gone]
                       + ([f"{len(old)} ufw rule(s) moved into the set"] if old else []))
    changed = bool(added or gone or old) or not in_kernel or any(s.changed for s in steps)
    script = f"{client_set.HOOK} start\n" + "".join(
        command("ufw", "delete", "allow", "from", a, "to", d, "port", str(p), "proto", "tcp") + "\n"
        for (a, d, p, _n) in old) if changed else ""
    names = ", ".join(sorted(clients)) or "no clients"
    ports = f"ports {port},{ci_port}/tcp" if ci_port else f"port {port}/tcp"
    title = f"{ports} open to: {names}" if tunnel is None else \
        f"port {port}/tcp open to client addresses: none (inside the tunnel instead)"
    steps.append(Step("firewall", title, changed, detail or ("set loaded" if changed else ""), script=script,
                      outcome=Outcome.FIREWALL if tunnel is None else None))
    for m in kept:
        steps.append(Step("firewall", f"rule for {m.name} ({m.address}) kept", False,
                          f"{m.name} is not in the inventory at {m.address}: `invoke remove-client {m.name}` or "
                          f"`provision --prune-clients` closes it"))
    return steps


def tunnel_step(facts: FirewallFacts, port: int, tunnel: Tunnel | None) -> Step:
    """The VPN's rules, wanted or not: those of an earlier setting (another UDP port, allow_from) are replaced."""
    want = [ufw(r).strip() for r in tunnel.rules(port)] if tunnel else []
    have = vpn_rules(facts)
    add, gone = [r for r in want if r not in have], [r for r in have if r not in want]
    script = "".join(r + "\n" for r in add) + "".join(command("ufw", "delete", *_rule_words(r)) + "\n" for r in gone)
    title = (f"port {port}/tcp open inside the tunnel ({tunnel.interface}), UDP {tunnel.udp_port} to it" if tunnel
             else "no VPN rules")
    return Step("firewall", title, bool(script), f"{len(add)} added, {len(gone)} deleted" if script else "",
                script=script, outcome=Outcome.FIREWALL if tunnel else None)


class FirewallRole(Role[BuildHost, FirewallInput, FirewallFacts]):
    name = "firewall"

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> FirewallInput:
        if inv.vpn is not None:   # (the clients' own rules go: they build through the tunnel, from any address)
            gone = options.prune_clients if options.prune_clients is True else \
                frozenset(inv.clients) | (options.prune_clients or frozenset())
            return FirewallInput({}, gone, Tunnel(vpn.tunnel.IFACE, inv.vpn.port, tuple(inv.vpn.allow_from)))
        # a CI trust's networks (its jobs' runners) join the set, named ci-TRUST-N, with the CI exchange's port
        ci = {f"ci-{name}-{i + 1}": net for name, t in sorted(inv.ci_trust.items()) for i, net in enumerate(t.networks)}
        return FirewallInput({c.name: c.address for c in inv.clients.values()} | ci, options.prune_clients, None,
                             target.buildkit.ci_port if inv.ci_trust else None)

    def parse(self, sections: dict[str, str]) -> FirewallFacts:
        return parse(sections)

    def files(self, ctx: Context[BuildHost, FirewallInput]) -> list[File]:
        """The clients' set's files, as their state is read (the members the plan writes keep the clients it
        keeps: client_steps)."""
        host = ctx.target
        return [File(client_set.HOOK, client_set.hook_script(host.buildkit.port, host.private_address or ANY,
                                                             ctx.input.ci_port).encode(), 0o700, dir_mode=0o700),
                File(client_set.MEMBERS, client_set.members_text(
                    Member(n, a) for n, a in ctx.input.clients.items()).encode(), 0o600, dir_mode=0o700)]

    def plan(self, ctx: Context[BuildHost, FirewallInput], facts: FirewallFacts,
             files: dict[str, FileState]) -> list[Step]:
        host = ctx.target
        return plan(facts, host.ssh_port, host.buildkit.port, ctx.input.clients, ctx.input.drop,
                    host.private_address or ANY, ctx.input.tunnel, files, ctx.input.ci_port)


ROLE = FirewallRole()
