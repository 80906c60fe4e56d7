"""The clients' addresses as one kernel set per family, let in to the BuildKit port by one rule per family.

ufw has no sets: a ufw rule per client cost one `ufw` run each (a Python program, about 0.15 s), so a team of 230
clients took 38 s to provision and every rule was a line of facts. Here the clients are the members of two ipsets
(hash:net, IPv4 and IPv6), loaded from one file in one `ipset restore` into a spare set and swapped in (there is no
instant where a client is out), and one iptables rule per family lets the set in to the port.

The rules sit in ufw's own chain (ufw-before-input, after ufw's user rules) and are put there by our hook, which
ufw's `after.init` runs each time ufw has loaded its rules (boot, enable, reload) and before it unloads them: ufw
stays the truth of everything else, and our rule never exists without its set. It fails closed: no hook, no set, or
no rule, and nobody is let in. (The other place, a rule in before.rules, names a set that may be missing at boot,
and then ufw's whole load fails: every port open.)"""
from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from buildkit_ops.engine.shell import command, quote
from buildkit_ops.inventory import values

DIR = "/etc/buildkit-ops/firewall"
MEMBERS = f"{DIR}/clients"          # "name address" lines: the sets' members, and whose each one is
HOOK = f"{DIR}/ufw-after.sh"
AFTER_INIT = "/etc/ufw/after.init"
HOOK_LINE = f'[ ! -x {HOOK} ] || {HOOK} "$1"   # buildkit-ops: the BuildKit port open to the clients\' set'
SET = {4: "bkops-clients4", 6: "bkops-clients6"}
CHAIN = {4: "ufw-before-input", 6: "ufw6-before-input"}
TOOL = {4: "iptables", 6: "ip6tables"}
COMMENT = "buildkit-ops-clients"    # our rules' comment: each says its port and address (one of an earlier goes)
ANY = "any"


@dataclass(frozen=True, order=True)
class Member:
    name: str
    address: str    # as values.client_source writes it: 10.0.0.21, 10.0.0.0/24, fd00::21


class NotAClient(ValueError):
    """A member whose name or address no client could have (the inventory's loader refuses them before)."""


def could_be(name: str, address: str) -> bool:
    """Could a client have this name and address, as the inventory's loader writes them?"""
    try:
        return re.fullmatch(values.NAME, name) is not None and values.client_source(address) == address
    except values.BadValue:
        return False


def members_text(members: Iterable[Member]) -> str:
    """The members file: a line per client. Each value is checked again here, so that even one the loader had not
    checked cannot add a line (a member) or a word."""
    lines = []
    for m in sorted(set(members)):
        if not could_be(m.name, m.address):
            raise NotAClient(f"not a client of the firewall's set: {m.name!r} at {m.address!r}")
        lines.append(f"{m.name} {m.address}\n")
    return "# buildkit-ops: the clients let in to the BuildKit port (name address), loaded by ufw-after.sh\n" + \
        "".join(lines)


def parse_members(text: str) -> set[Member]:
    """The members file as the host has it; a line no client could have written is not a member (the file is
    written again without it)."""
    words = (line.split() for line in text.splitlines() if not line.startswith("#"))
    return {Member(*w) for w in words if len(w) == 2 and could_be(*w)}


def family(address: str) -> int:
    return ipaddress.ip_network(address, strict=False).version


def _ports(port: int, ci_port: int | None) -> str:
    return f"{int(port)},{int(ci_port)}" if ci_port else str(int(port))


def rule_comment(port: int, dest: str, ci_port: int | None = None) -> str:
    return f"{COMMENT}:{_ports(port, ci_port)}:{dest}"


def rule(fam: int, port: int, dest: str, ci_port: int | None = None) -> list[str]:
    """Our rule's words for one family (after `-A CHAIN`); none where the port cannot be reached over that family
    (private mode: the host's private address is of one family). With CI trusts, the CI exchange's port too (its
    jobs' networks are members of the set)."""
    if dest != ANY and family(dest) != fam:
        return []
    match = ["-m", "multiport", "--dports", _ports(port, ci_port)] if ci_port else ["--dport", str(int(port))]
    return ["-p", "tcp", *match, *(["-d", dest] if dest != ANY else []),
            "-m", "set", "--match-set", SET[fam], "src", "-m", "comment", "--comment",
            rule_comment(port, dest, ci_port), "-j", "ACCEPT"]


def hook_script(port: int, dest: str, ci_port: int | None = None) -> str:
    """The hook ufw's after.init runs (start: after ufw loaded its rules; stop: before it unloads them), and that
    provision runs after a change of the members."""
    puts = "".join(f"  put {TOOL[f]} {CHAIN[f]} {command(*rule(f, port, dest, ci_port))}\n" for f in (4, 6))
    return f"""#!/bin/sh
# Written by buildkit-ops (the firewall role); edits are replaced. See {DIR}/clients for who is let in.
set -eu
set -f
# ours are the rules whose comment starts so; the one with this port and address is kept, any other goes
OURS={quote(COMMENT)}
WANT={quote(rule_comment(port, dest, ci_port))}
put() {{  # TOOL CHAIN [RULE...]: the rule in place (added before an earlier one goes: never a moment with none)
  tool=$1 chain=$2; shift 2
  "$tool" -w -S "$chain" >/dev/null 2>&1 || return 0     # ufw not loaded (or IPv6 off): its start calls us
  if [ $# -gt 0 ]; then "$tool" -w -C "$chain" "$@" 2>/dev/null || "$tool" -w -A "$chain" "$@"; fi
  drop "$tool" "$chain" "$WANT"
}}
drop() {{  # TOOL CHAIN [KEEP]: our rules out but the one whose comment is KEEP, by number, the last first
  for n in $("$1" -w -L "$2" -n --line-numbers 2>/dev/null |
             awk -v ours="/* $OURS" -v keep="/* ${{3:-none}} */" 'index($0, ours) && !index($0, keep) {{ print $1 }}' |
             sort -rn); do
    "$1" -w -D "$2" "$n"
  done
}}
case "${{1:-}}" in
start)
  for f in 4 6; do
    [ $f = 4 ] && fam=inet || fam=inet6
    ipset -exist create bkops-clients$f hash:net family $fam
    ipset -exist create bkops-next$f hash:net family $fam
    ipset flush bkops-next$f
  done
  awk '!/^#/ && NF == 2 {{ print "add " ($2 ~ /:/ ? "bkops-next6" : "bkops-next4") " " $2 }}' {MEMBERS} |
    ipset -exist restore
  for f in 4 6; do ipset swap bkops-next$f bkops-clients$f; ipset destroy bkops-next$f; done
{puts}  ;;
stop)
  drop iptables {CHAIN[4]}
  drop ip6tables {CHAIN[6]}
  ;;
esac
"""


def hook_install_script() -> str:
    """Our line in ufw's after.init, right after its first line (Debian's is a template that does nothing), and
    after.init executable (ufw runs it only then; Debian ships it 0640)."""
    f, tmp = quote(AFTER_INIT), quote(AFTER_INIT + ".bkops")
    return (f"[ -s {f} ] || printf '#!/bin/sh\\n' > {f}\n"
            f"{{ head -n 1 {f}; printf '%s\\n' {quote(HOOK_LINE)}; tail -n +2 {f} | grep -vF {quote(HOOK)}; }} "
            f"> {tmp}\nchmod 0750 {tmp}\nmv {tmp} {f}\n")
