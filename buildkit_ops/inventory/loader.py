"""Load and validate inventory.yml.

The inventory has the shape of an Ansible YAML inventory:

    all:
      vars: {...}                 # defaults for every host
      children:
        buildhosts:
          vars: {...}             # defaults for build hosts
          hosts: {build1: {...}}
          children: {eu: {hosts: {build1: {}}}}   # optional named groups
        clients:
          hosts: {laptop: {...}}

Values merge all.vars < group vars < host vars (dicts merge key by key).
Every error names the file, the key path, what is wrong and how to fix it.
"""
from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import yaml

from buildkit_ops.inventory import ci_trusts, strict_yaml, vpn_addresses
from buildkit_ops.inventory import values as types
from buildkit_ops.inventory.checker import Checker, deep_merge
from buildkit_ops.inventory.model import OPERATOR_NAME, BuildHost, Client, Inventory, InventoryError, Tenant
from buildkit_ops.inventory.schema import ALL_VAR_KEYS, CLIENT_KEYS, HOST_KEYS, TENANT_BUILDKIT_KEYS, TENANT_KEYS

DEFAULT_INVENTORY = "inventory.yml"


def _walk_hosts(chk: Checker, group: dict[str, Any], path: str, inherited: dict[str, Any],
                groups: dict[str, Any], group_name: str, found: dict[str, Any]) -> None:
    chk.unknown(group, {"vars", "hosts", "children"}, path)
    gvars = deep_merge(inherited, chk.mapping(group.get("vars"), f"{path}.vars"))
    hosts = chk.mapping(group.get("hosts"), f"{path}.hosts")
    for name, hv in hosts.items():
        hp = f"{path}.hosts.{name}"
        if not isinstance(name, str) or not re.fullmatch(types.NAME, name):
            chk.err(hp, f"{name!r} is not a valid host name",
                    "use lower-case letters, digits and dashes, starting with a letter or digit")
        merged = deep_merge(gvars, chk.mapping(hv, hp))
        if name not in found:
            found[name] = (merged, hp)
        elif hv:  # listed again in another group, with values of its own
            found[name] = (deep_merge(found[name][0], chk.mapping(hv, hp)), hp)
        groups.setdefault(group_name, []).append(name)
    for child, sub in chk.mapping(group.get("children"), f"{path}.children").items():
        _walk_hosts(chk, chk.mapping(sub, f"{path}.children.{child}"), f"{path}.children.{child}", gvars,
                    groups, child, found)
        groups.setdefault(group_name, [])
        for n in groups[child]:
            if n not in groups[group_name]:
                groups[group_name].append(n)


def _where(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"


def load(path: str | os.PathLike[str] = DEFAULT_INVENTORY) -> Inventory:
    file = Path(path)
    fname = str(file)
    if not file.exists():
        raise InventoryError(fname, "(file)", "the inventory file does not exist",
                             "create it from the README's example or pass -i/--inventory PATH")
    try:
        data = strict_yaml.load(file.read_text())
    except strict_yaml.StrictYAMLError as e:
        raise InventoryError(fname, _where(e), e.problem, "give each key once, and write values out in full "
                                                          "(no &anchors or *aliases)") from None
    except yaml.YAMLError as e:
        raise InventoryError(fname, _where(e), f"is not valid YAML: {getattr(e, 'problem', e)}",
                             "check the indentation and quoting at that line") from None
    return parse(data, fname, file.resolve().parent)


def parse(data: Any, fname: str, base: Path) -> Inventory:
    """The Ansible-shaped document into the typed model: all.vars (this tool's own, and defaults for every
    machine), the build hosts (with their groups) and the clients."""
    chk = Checker(fname, base)
    top = chk.mapping(data, "(top level)")
    if "all" not in top:
        chk.err("all", "the top-level key `all` is missing", "start the file with `all:` (see the README)")
    chk.unknown(top, {"all"}, "(top level)")
    root = chk.mapping(top["all"], "all")
    chk.unknown(root, {"vars", "children"}, "all")
    allvars = chk.mapping(root.get("vars"), "all.vars")
    children = chk.mapping(root.get("children"), "all.children")
    chk.unknown(children, {"buildhosts", "clients"}, "all.children")
    if "buildhosts" not in children:
        chk.err("all.children.buildhosts", "no build hosts group", "add `buildhosts:` with `hosts:` under all.children")
    tenants_value = allvars.pop("tenants", None)
    trusts_value = allvars.pop("ci_trust", None)
    own = _own_vars(chk, {k: allvars.pop(k) for k in list(allvars) if k in ALL_VAR_KEYS})
    hosts, groups, raw_buildkit, paths = _build_hosts(chk, children["buildhosts"], allvars, own["vpn"] is not None)
    tenants = _tenants(chk, tenants_value, hosts, raw_buildkit, paths)
    clients = _clients(chk, children.get("clients"), allvars, hosts, tenants)
    trusts = ci_trusts.trusts(chk, trusts_value, tenants)
    chosen = vpn_addresses.assign(chk, own["vpn"], hosts, clients, paths) if own["vpn"] else {}
    return Inventory(file=Path(fname), hosts=hosts, clients=clients, groups=groups, pki_dir=Path(own["pki_dir"]),
                     cert_days=own["cert_days"], cert_renew_days=own["cert_renew_days"], ca_days=own["ca_days"],
                     tenants=tenants, vpn=own["vpn"], vpn_unrecorded=chosen, ci_trust=trusts)


def _own_vars(chk: Checker, own: dict[str, Any]) -> dict[str, Any]:
    """This tool's own settings (all.vars: pki_dir and the certificates' lifetimes)."""
    v = chk.fields(own, ALL_VAR_KEYS, "all.vars")
    if v["cert_days"] > 825 or v["cert_days"] < 1:
        chk.err("all.vars.cert_days", f"{v['cert_days']} is out of range",
                "use 1 to 825 days (clients such as macOS reject longer-lived certificates)")
    if v["cert_renew_days"] >= v["cert_days"]:
        chk.err("all.vars.cert_renew_days", f"{v['cert_renew_days']} is not below cert_days ({v['cert_days']}): "
                                            f"every run would reissue every certificate",
                "make cert_renew_days smaller than cert_days, e.g. 30 with 825")
    return v


def _build_hosts(chk: Checker, group: Any, shared: dict[str, Any], vpn: bool = False
                 ) -> tuple[dict[str, BuildHost], dict[str, list[str]], dict[str, dict[str, Any]], dict[str, str]]:
    """The build hosts, their groups, each host's `buildkit:` as written (a tenant's settings merge into it), and
    where in the file each host is."""
    groups: dict[str, list[str]] = {}
    found: dict[str, tuple[dict[str, Any], str]] = {}
    _walk_hosts(chk, chk.mapping(group, "all.children.buildhosts"), "all.children.buildhosts", shared, groups,
                "buildhosts", found)
    if not found:
        chk.err("all.children.buildhosts.hosts", "no build hosts", "add at least one host with an `address:`")
    hosts: dict[str, BuildHost] = {}
    for name, (merged, hp) in found.items():
        for k in [k for k in merged if k in CLIENT_KEYS and k not in HOST_KEYS]:   # (all.vars meant for clients)
            merged.pop(k)
        f = chk.fields(merged, HOST_KEYS, hp, required=("address",))
        if vpn and f["client_address"] is not None:
            chk.err(f"{hp}.client_address", "clients reach a host through the VPN, at its vpn_address",
                    "remove client_address (or all.vars.vpn)")
        if f["buildkit"] is None:
            f["buildkit"] = chk.buildkit({}, f"{hp}.buildkit")
        f["client_address"] = f["client_address"] or f["private_address"] or f["address"]
        hosts[name] = BuildHost(name=name, **f)
        if hosts[name].buildkit.port == hosts[name].ssh_port:
            chk.err(f"{hp}.buildkit.port", "the BuildKit port equals the SSH port", "pick another port, e.g. 1234")
        if hosts[name].buildkit.ci_port in (hosts[name].buildkit.port, hosts[name].ssh_port):
            chk.err(f"{hp}.buildkit.ci_port", "the CI exchange's port equals the BuildKit or SSH port",
                    "pick another port, e.g. 1235")
    _names_unique(chk, hosts, {n: hp for n, (_m, hp) in found.items()})
    return (hosts, groups, {n: chk.mapping(m.get("buildkit"), f"{hp}.buildkit") for n, (m, hp) in found.items()},
            {n: hp for n, (_m, hp) in found.items()})


SLOTS = 256   # tenants' step subnets: 10.11.<slot>.0/24 (roles/buildkitd/daemons.py)


def _tenants(chk: Checker, value: Any, hosts: dict[str, BuildHost], raw_buildkit: dict[str, dict[str, Any]],
             paths: dict[str, str]) -> dict[str, Tenant]:
    """all.vars.tenants: each tenant's hosts, and its BuildKit settings on each of them (the host's, with the
    tenant's own merged in key by key, checked as a host's are)."""
    out: dict[str, Tenant] = {}
    table = chk.mapping(value, "all.vars.tenants")
    if len(table) > SLOTS // 2:
        chk.err("all.vars.tenants", f"{len(table)} tenants: at most {SLOTS // 2} fit a host's step subnets",
                "merge tenants, or spread them over several inventories")
    recorded: dict[str, int] = {}
    for name in sorted(table, key=str):
        tp = f"all.vars.tenants.{name}"
        chk.check("tenant_name", name, tp)
        t = chk.mapping(table[name], tp)
        chk.unknown(t, TENANT_KEYS, tp)
        names = chk.check("name_list", t["hosts"], f"{tp}.hosts") if t.get("hosts") is not None else list(hosts)
        for i, h in enumerate(names):
            if h not in hosts:
                chk.err(f"{tp}.hosts[{i}]", f"{h!r} is not a build host", "use one of: " + ", ".join(sorted(hosts)))
        if not names:
            chk.err(f"{tp}.hosts", "is empty: the tenant would run nowhere", "name at least one build host, or "
                                                                              "leave `hosts:` out (every host)")
        own = chk.mapping(t.get("buildkit"), f"{tp}.buildkit")
        for key in own:
            if key not in TENANT_BUILDKIT_KEYS:
                chk.err(f"{tp}.buildkit.{key}", f"a tenant cannot set {key!r}: it is the host's (one image, port "
                                                f"and gateway per host)",
                        f"set it on the host; a tenant may set: {', '.join(TENANT_BUILDKIT_KEYS)}")
        settings = {h: chk.buildkit(deep_merge(raw_buildkit[h], own), f"{tp}.buildkit")
                    for h in hosts if h in names}
        for h, bk in settings.items():
            if bk.step_network == "host":
                chk.err(f"{tp}.buildkit.step_network", f"is host on {h} (a tenant's or its host's value): the "
                                                       f"tenant's build steps would run in {h}'s own network, where "
                                                       f"no fence applies, and reach the other tenants' steps and "
                                                       f"the host itself", "use sandboxed (the default)")
                break
        if t.get("step_slot") is not None:
            recorded[name] = chk.check("int:0-255", t["step_slot"], f"{tp}.step_slot")
        placement = chk.check("enum:home,spill,least-busy", t["placement"], f"{tp}.placement") \
            if t.get("placement") is not None else None
        out[name] = Tenant(name, [h for h in hosts if h in names], settings, -1, name in recorded, placement)
    _slots(chk, out, recorded)
    _tenant_hosts(chk, out, hosts, paths)
    return out


def _tenant_hosts(chk: Checker, tenants: dict[str, Tenant], hosts: dict[str, BuildHost],
                  paths: dict[str, str]) -> None:
    """What a host with tenants may not have: the fleet's own daemon on the host's network (its steps would reach
    the tenants' steps), one debug listener address (every daemon would take it)."""
    for h in hosts:
        names = [t.name for t in tenants.values() if h in t.hosts]
        if not names:
            continue
        if hosts[h].buildkit.step_network == "host":
            chk.err(f"{paths[h]}.buildkit.step_network", f"is host on {h}, which runs the buildkitd of tenant "
                                                         f"{names[0]} too: the fleet's build steps would run in "
                                                         f"{h}'s own network, where no fence applies, and reach the "
                                                         f"tenants' steps", "use sandboxed (the default)")
        if hosts[h].buildkit.debug_address:
            chk.err(f"{paths[h]}.buildkit.debug_address", f"is set on {h}, which runs tenant {names[0]}'s "
                                                          f"buildkitd too: every daemon would take the same address, "
                                                          f"and the tenants' daemons would not start",
                    "leave debug_address out on hosts with tenants")


def _slots(chk: Checker, tenants: dict[str, Tenant], recorded: dict[str, int]) -> None:
    """Each tenant's step subnet: the one recorded in the inventory, else a stable one from the name, the next
    free one on a clash. Recorded slots are taken first, so a new tenant never moves a recorded one; provision
    records new ones (flows/provision.py) before any host uses them."""
    owner: dict[int, str] = {}
    for name, slot in sorted(recorded.items()):
        if slot in owner:
            chk.err(f"all.vars.tenants.{name}.step_slot", f"{slot} is also tenant {owner[slot]}'s: two tenants on "
                                                          f"one subnet would share a bridge",
                    "give it a free slot, or remove the key to have one chosen and recorded")
        owner[slot] = name
        tenants[name].slot = slot
    for name, tenant in tenants.items():
        if name in recorded:
            continue
        slot = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big") % SLOTS
        while slot in owner:
            slot = (slot + 1) % SLOTS
        owner[slot] = name
        tenant.slot = slot


def _names_unique(chk: Checker, hosts: dict[str, BuildHost], paths: dict[str, str]) -> None:
    """A name or address in one host's server certificate may be in no other's: a client checks that the host it
    reached is the one it meant by those names. (FLEET_NAME is in every one: docs/security.md.)"""
    owner: dict[str, str] = {}
    for name, h in hosts.items():
        for n in {h.address, h.client_address, *([h.private_address] if h.private_address else []), *h.names, name}:
            if n in owner and owner[n] != name:
                chk.err(f"{paths[name]}.names", f"{n} is also a name of build host {owner[n]!r}: either certificate "
                                                f"would then pass for the other host",
                        "give each host names of its own")
            owner[n] = name


def _clients(chk: Checker, group: Any, shared: dict[str, Any], hosts: dict[str, BuildHost],
             tenants: dict[str, Tenant]) -> dict[str, Client]:
    clients: dict[str, Client] = {}
    cgroup = chk.mapping(group, "all.children.clients")
    chk.unknown(cgroup, {"vars", "hosts"}, "all.children.clients")
    cvars = chk.mapping(cgroup.get("vars"), "all.children.clients.vars")
    defaults = deep_merge({k: v for k, v in shared.items() if k in CLIENT_KEYS}, cvars)
    seen: dict[str, str] = {}
    for name, cv in chk.mapping(cgroup.get("hosts"), "all.children.clients.hosts").items():
        cp = f"all.children.clients.hosts.{name}"
        if not isinstance(name, str) or not re.fullmatch(types.NAME, name):
            chk.err(cp, f"{name!r} is not a valid client name",
                    "use lower-case letters, digits and dashes (it becomes the certificate's CN)")
        if name in hosts:
            chk.err(cp, f"{name!r} is both a build host and a client", "give the client another name")
        if name == OPERATOR_NAME:
            chk.err(cp, f"{name!r} is the name of the operator's own certificate: a client of that name would get "
                        f"the operator's role and its routing", "give the client another name")
        own = chk.mapping(cv, cp)
        f = chk.fields(deep_merge(defaults, own), CLIENT_KEYS, cp, required=("address",))
        _check_client(chk, cp, f, hosts, tenants)
        tenant = tenants.get(f.get("tenant") or "")
        if "placement" not in own and "placement" not in defaults and tenant is not None and tenant.placement:
            f["placement"] = tenant.placement    # (the tenant's, for a client that does not say)
        f["ssh_address"] = f["ssh_address"] or f["address"]
        f["limits"] = f["limits"] or chk.limits({}, f"{cp}.limits")
        clients[name] = Client(name=name, **f)
    for c in clients.values():
        if c.address in seen:
            chk.err(f"all.children.clients.hosts.{c.name}.address",
                    f"{c.address} is already the address of client {seen[c.address]!r}",
                    "give each client its own address (firewall rules are per address)")
        seen[c.address] = c.name
    return clients


def _check_client(chk: Checker, cp: str, f: dict[str, Any], hosts: dict[str, BuildHost],
                  tenants: dict[str, Tenant]) -> None:
    """What a client's values mean together, and with the build hosts and tenants."""
    if f["tenant"] is not None and f["tenant"] not in tenants:
        chk.err(f"{cp}.tenant", f"{f['tenant']!r} is not a tenant",
                "use one of: " + (", ".join(sorted(tenants)) or "(none yet: add it under all.vars.tenants)"))
    if f["tenant"] is not None:
        hosts = {n: hosts[n] for n in tenants[f["tenant"]].hosts}
    if types.too_wide(f["address"]) and not f["allow_wide_network"]:
        net = ipaddress.ip_network(f["address"])
        chk.err(f"{cp}.address", f"{f['address']} is a network wider than /{types.WIDEST[net.version]}: a client "
                                 f"certificate that leaks would reach the BuildKit port from anywhere in it",
                f"name the client's own address or a network of at most /{types.WIDEST[net.version]}, or set "
                f"`allow_wide_network: true` on this client if so wide a network is meant")
    if f["ssh_address"] is None and f["connection"] == "ssh" and "/" in f["address"]:
        chk.err(f"{cp}.ssh_address", f"is missing, and address {f['address']} is a network, not a machine",
                "add `ssh_address:` with the address SSH connects to")
    if f["failover"] == "proxy" and f["connection"] == "none":
        chk.err(f"{cp}.failover", "a client with `connection: none` is not set up by this tool, so it cannot "
                                  "get a failover proxy", "remove `failover: proxy` (or reach it: connection ssh)")
    if f["failover"] == "proxy" and f["failover_port"] + len(hosts) - 1 > 65535:
        chk.err(f"{cp}.failover_port", f"{f['failover_port']} leaves no room for one port per build host "
                                       f"({len(hosts)})", "pick a lower port, e.g. 12340")
    if f["home"] is not None and f["home"] not in hosts:
        of = f" of tenant {f['tenant']}" if f["tenant"] else ""
        chk.err(f"{cp}.home", f"{f['home']!r} is not a build host{of}", "use one of: " + ", ".join(sorted(hosts)))
