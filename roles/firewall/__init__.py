"""firewall: ufw denies inbound by default; SSH is allowed before anything
else (so the operator is never locked out, with zero clients too, or if a run
stops half-way); the BuildKit port opens only to the inventory's clients.

buildkitd runs with host networking, so Docker adds no NAT rule that would
bypass ufw (see LAB-NOTES: a published port is reachable by everyone).
Only rules whose comment starts with "buildkit-ops" are ever touched.
"""
from __future__ import annotations

import re

from .. import Step

FACTS = r"""
echo @@ufw_present; command -v ufw >/dev/null 2>&1 && echo yes || echo no
echo @@ufw_status; ufw status verbose 2>/dev/null | head -4
echo @@ufw_rules; ufw show added 2>/dev/null | grep '^ufw ' || true
"""

TAG = "buildkit-ops"
CLIENT_RULE = re.compile(r"^ufw allow from (\S+) to any port (\d+) proto tcp comment '" + TAG + r" client (\S+)'$")


def ssh_rule(ssh_port: int) -> str:
    return f"allow {ssh_port}/tcp comment '{TAG} ssh'"


def client_rule(address: str, port: int, name: str) -> str:
    return f"allow from {address} to any port {port} proto tcp comment '{TAG} client {name}'"


def plan(facts: dict[str, str], ssh_port: int, port: int, clients: dict[str, str],
         drop: bool | set[str] = False) -> list[Step]:
    """clients: name -> address of every client that may reach `port`.
    A rule for a client that is not in the inventory is kept (a client is never dropped by accident) unless
    drop is True (`provision --prune-clients`) or names it (`remove-client NAME`)."""
    if facts.get("ufw_present") != "yes":
        return [Step("firewall", "ufw installed", True, "install ufw",
                     script="DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ufw\n")] + \
            plan({"ufw_present": "yes", "ufw_status": "", "ufw_rules": ""}, ssh_port, port, clients)
    rules = [r.strip() for r in facts.get("ufw_rules", "").splitlines() if r.strip()]
    status = facts.get("ufw_status", "")
    steps: list[Step] = []

    want_ssh = "ufw " + ssh_rule(ssh_port)
    if want_ssh in rules:
        steps.append(Step("firewall", f"ssh {ssh_port}/tcp allowed", False))
    else:
        steps.append(Step("firewall", f"ssh {ssh_port}/tcp allowed", True, "allow SSH first",
                          script=f"ufw {ssh_rule(ssh_port)}\n"))

    have_clients = {}
    for r in rules:
        m = CLIENT_RULE.match(r)
        if m:
            have_clients[(m.group(1), int(m.group(2)), m.group(3))] = r
    want = {(addr, port, name) for name, addr in clients.items()}
    add = sorted(want - set(have_clients), key=lambda t: t[2])
    stale = sorted(set(have_clients) - want, key=lambda t: t[2])
    gone = [t for t in stale if drop is True or (drop and t[2] in drop)]
    kept = [t for t in stale if t not in gone]
    script = "".join(f"ufw {client_rule(a, p, n)}\n" for a, p, n in add)
    script += "".join(f"ufw delete allow from {a} to any port {p} proto tcp\n" for a, p, n in gone)
    detail = ", ".join([f"+{n} ({a})" for a, p, n in add] + [f"-{n} ({a})" for a, p, n in gone])
    names = ", ".join(sorted(clients)) or "no clients"
    steps.append(Step("firewall", f"port {port}/tcp open to: {names}", bool(script), detail, script=script))
    for a, p, n in kept:
        steps.append(Step("firewall", f"rule for {n} ({a}) kept", False,
                          f"{n} is not in the inventory: `invoke remove-client {n}` or `provision --prune-clients` "
                          f"closes it"))

    defaults_ok = "deny (incoming)" in status and "allow (outgoing)" in status
    active = "Status: active" in status
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
