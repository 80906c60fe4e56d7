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

import copy
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import yaml

from . import buildkit_versions as versions
from . import inventory_types as types
from .inventory_model import (
    GC,
    BuildHost,
    BuildKit,
    Client,
    GCPolicy,
    Inventory,
    InventoryError,
    PruneSchedule,
    Registry,
)
from .inventory_types import is_ip

# What the rest of buildkit-ops takes from here: the loader, and the model it returns.
__all__ = ["GC", "BuildHost", "BuildKit", "Client", "GCPolicy", "Inventory", "InventoryError", "PruneSchedule",
           "Registry", "is_ip", "load", "parse", "parse_duration", "parse_size", "types", "DEFAULT_INVENTORY"]

DEFAULT_INVENTORY = "inventory.yml"
# The current BuildKit release, pinned by tag and by the digest of its multi-platform index (check it with
# `docker buildx imagetools inspect moby/buildkit:v0.29.0`).
DEFAULT_IMAGE = "moby/buildkit:v0.29.0@sha256:0039c1d47e8748b5afea56f4e85f14febaf34452bd99d9552d2daa82262b5cc5"
SIZE_RE = re.compile(r"([0-9]{1,15}(?:\.[0-9]{1,6})?) ?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?", re.I)
DURATION_RE = re.compile(r"([0-9]{1,6}h)?([0-9]{1,6}m)?([0-9]{1,9}s)?")
SIZE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
              "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


# ---------------------------------------------------------------- value checks

def parse_size(value: Any) -> int:
    """'10GB' / '512MiB' / 1048576 -> bytes."""
    if isinstance(value, bool):
        raise ValueError("not a size")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("negative")
        return value
    m = SIZE_RE.fullmatch(str(value))
    if not m:
        raise ValueError("not a size")
    return int(float(m.group(1)) * SIZE_UNITS[(m.group(2) or "b").lower()])


def parse_duration(value: Any) -> int:
    """'48h' / '30m' / '1h30m' / '7d' -> seconds."""
    if isinstance(value, bool):
        raise ValueError("not a duration")
    s = str(value)
    if re.fullmatch(r"[0-9]{1,5}d", s):
        return int(s[:-1]) * 86400
    m = DURATION_RE.fullmatch(s)
    if not s or not m:
        raise ValueError("not a duration")
    h, mi, se = (int(g[:-1]) if g else 0 for g in m.groups())
    return h * 3600 + mi * 60 + se


# --------------------------------------------------------------------- schema
# key: (kind, default, help). kind is a type name checked by _check().
HOST_KEYS: dict[str, tuple[str, Any, str]] = {
    "address": ("address", None, "IP address or DNS name that SSH connects to"),
    "names": ("address_list", [], "extra DNS names and IPs clients use to reach the host (server cert SANs)"),
    "client_address": ("address", None, "the name or address clients' builders connect to (default: address)"),
    "ssh_user": ("user", "root", "SSH login user; a non-root user needs passwordless sudo"),
    "ssh_port": ("port", 22, "SSH port"),
    "ssh_key": ("path", None, "private key file for SSH (default: ssh-agent and ~/.ssh keys)"),
    "known_hosts": ("path", "~/.ssh/known_hosts", "known_hosts file holding the host's key; unknown keys are refused"),
    "connect_timeout": ("int:1-300", 10, "seconds to wait for an SSH connection"),
    "weight": ("int:1-1000", 100, "the host's share of the clients: twice the weight, about twice the clients"),
    "platforms": ("platform_list", None, "platforms it builds for, e.g. [linux/amd64] (default: what buildkitd "
                                         "reports)"),
    "emulate": ("emulated_platform_list", [], "platforms to emulate with qemu-user-static, e.g. [linux/arm64] "
                                              "(installed and registered by provision)"),
    "buildkit": ("buildkit", None, "BuildKit server settings (see below)"),
}
BUILDKIT_KEYS: dict[str, tuple[str, Any, str]] = {
    "image": ("image", DEFAULT_IMAGE, "image the server runs, pinned by tag or digest"),
    "image_archive": ("path", None,
                      "a `docker save` tarball loaded on the host when it lacks the image (air-gapped hosts)"),
    "version": ("version", "v0.29.0", "BuildKit version of the image (v0.13 to v0.29); buildkitd.toml holds the keys "
                                      "that version knows, the GC policy in its terms"),
    "port": ("port", 1234, "TCP port of the mutual-TLS listener"),
    "max_parallelism": ("int:1-1024", 4, "steps run at once"),
    "privileges": ("enum:privileged,unprivileged-lab", "privileged",
                   "container privileges: `privileged` (as upstream runs buildkitd) or the narrower set that "
                   "works inside the lab's containers"),
    "data_dir": ("remote_path", "/opt/buildkit-ops",
                 "directory on the host holding compose file, config and certificates"),
    "debug_address": ("loopback_listen", None, "debug and metrics listener on a loopback ip:port (default: none)"),
    "step_network": ("enum:sandboxed,host", "sandboxed",
                     "network of build steps: `sandboxed` (their own namespace, fenced off from the host) or "
                     "`host` (the host's own network: builds reach its loopback services)"),
    "history_max_age": ("duration", 7 * 86400, "how long buildkitd keeps build records (status and builds read "
                                               "them); default 7d"),
    "history_max_entries": ("int:1-100000", 5000, "the most build records buildkitd keeps"),
    "gc": ("gc", None, "garbage collection of the cache"),
    "registries": ("registries", {},
                   "per-registry settings: `ca` (file on this machine), `http`, `insecure`, `mirrors`"),
    "prune_schedule": ("prune_schedule", None, "a scheduled prune on the host (systemd timer): calendar, keep_storage, "
                                               "keep_duration, filters, all"),
}
PRUNE_KEYS = {"calendar": "calendar", "keep_storage": "size", "keep_duration": "duration", "filters": "filter_list",
              "all": "bool"}
GC_KEYS: dict[str, tuple[str, Any, str]] = {
    "enabled": ("bool", True, "run BuildKit's garbage collector"),
    "keep_storage": ("space", "10GB", "cache size the default rules prune down to (BuildKit uses it only "
                                      "without rules; from v0.17 it is the reserved space)"),
    "reserved": ("space", None, "v0.17+: space the GC never frees (reservedSpace)"),
    "max_used": ("space", None, "v0.17+: the most the cache may use (maxUsedSpace)"),
    "min_free": ("space", None, "v0.17+: free disk space the GC keeps (minFreeSpace)"),
    "policies": ("policies", None, "ordered GC rules: keep_duration, max_used, reserved, min_free, filters, all"),
}
POLICY_KEYS = {"all": "bool", "keep_duration": "duration", "max_used": "space", "reserved": "space",
               "min_free": "space", "filters": "filter_list"}
# `keep_bytes` (BuildKit v0.13's own word for what a rule prunes down to) is read as max_used.
POLICY_ALIASES = {"keep_bytes": "max_used"}
REGISTRY_KEYS = {"ca": "path", "http": "bool", "insecure": "bool", "mirrors": "registry_host_list"}
CLIENT_KEYS: dict[str, tuple[str, Any, str]] = {
    "address": ("client_source", None,
                "the IP address (or network) build hosts see this client's connections come from"),
    "connection": ("enum:local,ssh,none", "ssh", "`local`: the machine running invoke; `ssh`: reached over SSH; "
                                                "`none`: not reachable (a CI runner): its secrets and CI snippets "
                                                "are written to a folder instead"),
    "ssh_address": ("address", None, "address SSH connects to (default: address)"),
    "ssh_user": ("user", "root", "SSH login user on the client"),
    "ssh_port": ("port", 22, "SSH port"),
    "ssh_key": ("path", None, "private key file for SSH"),
    "known_hosts": ("path", "~/.ssh/known_hosts", "known_hosts file holding the client's host key"),
    "connect_timeout": ("int:1-300", 10, "seconds to wait for an SSH connection"),
    "builder": ("builder", "buildkit-ops", "name of the docker buildx builder created on the client"),
    "default_builder": ("bool", False, "make it the client's default builder (`docker buildx use`)"),
    "home": ("name", None, "a build host pinned as this client's home (default: rendezvous placement)"),
    "failover": ("enum:none,proxy", "none",
                 "`proxy`: a local HAProxy container on the client sends builds to the next host while the home "
                 "host does not answer (buildx alone does not fail over)"),
    "failover_port": ("port", 12340, "first loopback port of the failover proxy (one per build host)"),
    "failover_image": ("image", "haproxy:3.0-alpine", "image of the failover proxy, pinned by tag or digest"),
    "failover_image_archive": ("path", None, "a `docker save` tarball of failover_image, loaded on the client "
                                             "when it lacks the image (air-gapped clients, the lab)"),
}
ALL_VAR_KEYS = {"pki_dir": ("path", ".pki",
                            "operator-side directory of the CA and certificates (CA key never leaves it)"),
                "cert_days": ("int", 825, "validity of server and client certificates, at most 825"),
                "cert_renew_days": ("int", 30, "reissue a certificate when it expires within this many days"),
                "ca_days": ("int", 3650, "validity of the CA")}

DEFAULT_POLICIES = [
    {"keep_duration": "48h", "filters": ["type==source.local", "type==exec.cachemount", "type==source.git.checkout"]},
    {"keep_duration": "1440h"},
    {"max_used": "5GB"},
    {"all": True, "max_used": "10GB"},
]


# ---------------------------------------------------------------------- load

def _deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class _Checker:
    def __init__(self, file: str, base: Path):
        self.file, self.base = file, base

    def err(self, path: str, problem: str, fix: str) -> NoReturn:
        raise InventoryError(self.file, path, problem, fix)

    def mapping(self, value: Any, path: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.err(path, f"must be a mapping of keys, got {type(value).__name__} {value!r}",
                     "write it as `key: value` lines indented under it")
        return value

    def unknown(self, value: dict[str, Any], allowed: Iterable[str], path: str) -> None:
        for k in value:
            if k not in allowed:
                near = [a for a in allowed if a.split("_")[0] == str(k).split("_")[0]]
                hint = f"did you mean {near[0]!r}? " if near else ""
                self.err(f"{path}.{k}", f"unknown key {k!r}",
                         f"{hint}allowed keys here: {', '.join(sorted(allowed))}")

    def check(self, kind: str, value: Any, path: str) -> Any:
        if kind in types.CHECKS:
            try:
                return types.CHECKS[kind](value)
            except types.BadValue as e:
                self.err(path, e.problem, e.fix)
        if kind == "str":
            if not isinstance(value, str) or not value:
                self.err(path, f"must be a non-empty string, got {value!r}", "quote the value")
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                self.err(path, f"must be true or false, got {value!r}", "write true or false")
            return value
        if kind.startswith("int"):
            lo, hi = (int(x) for x in kind[4:].split("-")) if ":" in kind else (0, None)
            if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi and value > hi):
                span = f" from {lo} to {hi}" if hi else ""
                self.err(path, f"must be a whole number{span}, got {value!r}",
                         f"write a number{span}, without quotes")
            return value
        if kind == "port":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                self.err(path, f"must be a TCP port between 1 and 65535, got {value!r}", "write a number such as 1234")
            return value
        if kind.endswith("_list"):
            if not isinstance(value, list):
                self.err(path, f"must be a list, got {value!r}", "write it as [a, b]")
            return [self.check(kind.removesuffix("_list"), v, f"{path}[{i}]") for i, v in enumerate(value)]
        if kind == "path":
            try:
                value = types.local_path(value)
            except types.BadValue as e:
                self.err(path, e.problem, e.fix)
            p = Path(os.path.expanduser(value))
            return str(p if p.is_absolute() else (self.base / p))
        if kind == "size":
            try:
                return parse_size(value)
            except ValueError:
                self.err(path, f"{value!r} is not a size", "write a size such as 512MB, 10GB or 2GiB")
        if kind == "space":
            if isinstance(value, str) and re.fullmatch(r"[0-9]{1,3}%", value) and 0 < int(value[:-1]) <= 100:
                return value
            try:
                return parse_size(value)
            except ValueError:
                self.err(path, f"{value!r} is not a disk space", "write a size such as 10GB or 512MiB, or a share "
                                                                 "of the disk such as \"10%\"")
        if kind == "duration":
            try:
                return parse_duration(value)
            except ValueError:
                self.err(path, f"{value!r} is not a duration", "write a duration such as 48h, 30m or 7d")
        if kind.startswith("enum:"):
            allowed = kind[5:].split(",")
            if value not in allowed:
                self.err(path, f"{value!r} is not allowed", "use one of: " + ", ".join(allowed))
            return value
        raise AssertionError(kind)

    def fields(self, value: dict[str, Any], schema: dict[str, Any], path: str,
               required: tuple[str, ...] = ()) -> dict[str, Any]:
        self.unknown(value, schema, path)
        out = {}
        for key, (kind, default, _help) in schema.items():
            if key not in value or value[key] is None:
                if key in required:
                    self.err(f"{path}.{key}", "is required and missing", f"add `{key}:` to {path}")
                out[key] = copy.deepcopy(default)
                continue
            if kind in ("buildkit", "gc", "policies", "registries", "prune_schedule"):
                out[key] = getattr(self, kind)(value[key], f"{path}.{key}")
            else:
                out[key] = self.check(kind, value[key], f"{path}.{key}")
        return out

    def buildkit(self, value: Any, path: str) -> BuildKit:
        bk = self.fields(self.mapping(value, path), BUILDKIT_KEYS, path)
        if bk["gc"] is None:
            bk["gc"] = self.gc({}, f"{path}.gc")
        version = bk["version"]
        if not versions.supported(version):
            self.err(f"{path}.version", f"BuildKit {version} is not one this tool writes a config for "
                                        f"(v0.{versions.OLDEST} to v0.{versions.NEWEST}): its keys are unknown here, "
                                        f"and BuildKit ignores unknown keys silently",
                     f"run a version from v0.{versions.OLDEST}.0 to v0.{versions.NEWEST}.x (buildkit.image and "
                     f"buildkit.version together)")
        try:  # every GC value must have a key in this version's terms: never a silent drop
            versions.worker_gc(bk["gc"], version)
            for i, rule in enumerate(bk["gc"].policies):
                versions.policy(rule, version, i)
        except versions.Unexpressible as e:
            self.err(f"{path}.{e.field}", f"BuildKit {version} has no such setting (it came in v0.{e.since})",
                     f"remove it, or run BuildKit v0.{e.since} or newer (buildkit.image and buildkit.version)")
        return BuildKit(**bk)

    def gc(self, value: Any, path: str) -> GC:
        gc = self.fields(self.mapping(value, path), GC_KEYS, path)
        gc["keep_storage"] = self.check("space", gc["keep_storage"], f"{path}.keep_storage")  # (its default too)
        if gc["policies"] is None:
            gc["policies"] = self.policies(DEFAULT_POLICIES, f"{path}.policies")
        return GC(**gc)

    def policies(self, value: Any, path: str) -> list[GCPolicy]:
        if not isinstance(value, list):
            self.err(path, f"must be a list of GC rules, got {value!r}", "write each rule as `- keep_duration: 48h`")
        out = []
        for i, rule in enumerate(value):
            p = f"{path}[{i}]"
            rule = dict(self.mapping(rule, p))
            self.unknown(rule, {*POLICY_KEYS, *POLICY_ALIASES}, p)
            for old, new in POLICY_ALIASES.items():
                if old in rule and new in rule:
                    self.err(f"{p}.{old}", f"{old} and {new} are the same setting", f"keep only {new}")
            if not rule:
                self.err(p, "an empty GC rule", "give it keep_duration, max_used, reserved, min_free, filters or all")
            fields: dict[str, Any] = {}
            for k, v in rule.items():
                name = POLICY_ALIASES.get(str(k), str(k))
                fields[name] = self.check(POLICY_KEYS[name], v, f"{p}.{k}")
            out.append(GCPolicy(**fields))
        return out

    def prune_schedule(self, value: Any, path: str) -> PruneSchedule:
        sched = self.mapping(value, path)
        self.unknown(sched, PRUNE_KEYS, path)
        if "calendar" not in sched:
            self.err(f"{path}.calendar", "is required and missing",
                     "add a systemd calendar such as `calendar: daily` or `calendar: \"Sun 03:00\"`")
        if not any(k in sched for k in ("keep_storage", "keep_duration", "filters", "all")):
            self.err(path, "says when to prune but not what",
                     "add keep_storage (e.g. 20GB), keep_duration (e.g. 7d), filters or all")
        return PruneSchedule(**{k: self.check(PRUNE_KEYS[k], v, f"{path}.{k}") for k, v in sched.items()})

    def registries(self, value: Any, path: str) -> dict[str, Registry]:
        out = {}
        for host, conf in self.mapping(value, path).items():
            p = f"{path}.{host}"
            self.check("registry_host", host, p)
            conf = self.mapping(conf, p)
            self.unknown(conf, REGISTRY_KEYS, p)
            out[host] = Registry(**{k: self.check(REGISTRY_KEYS[k], v, f"{p}.{k}") for k, v in conf.items()})
        return out


def _walk_hosts(chk: _Checker, group: dict[str, Any], path: str, inherited: dict[str, Any],
                groups: dict[str, Any], group_name: str, found: dict[str, Any]) -> None:
    chk.unknown(group, {"vars", "hosts", "children"}, path)
    gvars = _deep_merge(inherited, chk.mapping(group.get("vars"), f"{path}.vars"))
    hosts = chk.mapping(group.get("hosts"), f"{path}.hosts")
    for name, hv in hosts.items():
        hp = f"{path}.hosts.{name}"
        if not isinstance(name, str) or not re.fullmatch(types.NAME, name):
            chk.err(hp, f"{name!r} is not a valid host name",
                    "use lower-case letters, digits and dashes, starting with a letter or digit")
        merged = _deep_merge(gvars, chk.mapping(hv, hp))
        if name not in found:
            found[name] = (merged, hp)
        elif hv:  # listed again in another group, with values of its own
            found[name] = (_deep_merge(found[name][0], chk.mapping(hv, hp)), hp)
        groups.setdefault(group_name, []).append(name)
    for child, sub in chk.mapping(group.get("children"), f"{path}.children").items():
        _walk_hosts(chk, chk.mapping(sub, f"{path}.children.{child}"), f"{path}.children.{child}", gvars,
                    groups, child, found)
        groups.setdefault(group_name, [])
        for n in groups[child]:
            if n not in groups[group_name]:
                groups[group_name].append(n)


def load(path: str | os.PathLike[str] = DEFAULT_INVENTORY) -> Inventory:
    file = Path(path)
    fname = str(file)
    if not file.exists():
        raise InventoryError(fname, "(file)", "the inventory file does not exist",
                             "create it from the README's example or pass -i/--inventory PATH")
    try:
        data = yaml.safe_load(file.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise InventoryError(fname, where, f"is not valid YAML: {getattr(e, 'problem', e)}",
                             "check the indentation and quoting at that line") from None
    return parse(data, fname, file.resolve().parent)


def parse(data: Any, fname: str, base: Path) -> Inventory:
    chk = _Checker(fname, base)
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

    own = {k: allvars.pop(k) for k in list(allvars) if k in ALL_VAR_KEYS}
    top_vars = chk.fields(own, ALL_VAR_KEYS, "all.vars")
    if top_vars["cert_days"] > 825 or top_vars["cert_days"] < 1:
        chk.err("all.vars.cert_days", f"{top_vars['cert_days']} is out of range",
                "use 1 to 825 days (clients such as macOS reject longer-lived certificates)")
    if top_vars["cert_renew_days"] >= top_vars["cert_days"]:
        chk.err("all.vars.cert_renew_days", f"{top_vars['cert_renew_days']} is not below cert_days "
                                            f"({top_vars['cert_days']}): every run would reissue every certificate",
                "make cert_renew_days smaller than cert_days, e.g. 30 with 825")
    shared = {k: v for k, v in allvars.items()}

    groups: dict[str, list[str]] = {}
    found: dict[str, tuple[dict[str, Any], str]] = {}
    _walk_hosts(chk, chk.mapping(children["buildhosts"], "all.children.buildhosts"), "all.children.buildhosts",
                shared, groups, "buildhosts", found)
    if not found:
        chk.err("all.children.buildhosts.hosts", "no build hosts", "add at least one host with an `address:`")
    hosts: dict[str, BuildHost] = {}
    for name, (merged, hp) in found.items():
        client_only = {k for k in merged if k in CLIENT_KEYS and k not in HOST_KEYS}
        for k in client_only:
            merged.pop(k)
        f = chk.fields(merged, HOST_KEYS, hp, required=("address",))
        if f["buildkit"] is None:
            f["buildkit"] = chk.buildkit({}, f"{hp}.buildkit")
        f["client_address"] = f["client_address"] or f["address"]
        hosts[name] = BuildHost(name=name, **f)
        ports = {hosts[name].buildkit.port, hosts[name].ssh_port}
        if len(ports) == 1:
            chk.err(f"{hp}.buildkit.port", "the BuildKit port equals the SSH port", "pick another port, e.g. 1234")

    clients: dict[str, Client] = {}
    cgroup = chk.mapping(children.get("clients"), "all.children.clients")
    chk.unknown(cgroup, {"vars", "hosts"}, "all.children.clients")
    cvars = chk.mapping(cgroup.get("vars"), "all.children.clients.vars")
    shared_c = {k: v for k, v in shared.items() if k in CLIENT_KEYS}
    for name, cv in chk.mapping(cgroup.get("hosts"), "all.children.clients.hosts").items():
        cp = f"all.children.clients.hosts.{name}"
        if not isinstance(name, str) or not re.fullmatch(types.NAME, name):
            chk.err(cp, f"{name!r} is not a valid client name",
                    "use lower-case letters, digits and dashes (it becomes the certificate's CN)")
        if name in hosts:
            chk.err(cp, f"{name!r} is both a build host and a client", "give the client another name")
        merged = _deep_merge(_deep_merge(shared_c, cvars), chk.mapping(cv, cp))
        f = chk.fields(merged, CLIENT_KEYS, cp, required=("address",))
        if f["ssh_address"] is None and f["connection"] == "ssh" and "/" in f["address"]:
            chk.err(f"{cp}.ssh_address", f"is missing, and address {f['address']} is a network, not a machine",
                    "add `ssh_address:` with the address SSH connects to")
        f["ssh_address"] = f["ssh_address"] or f["address"]
        if f["failover"] == "proxy" and f["connection"] == "none":
            chk.err(f"{cp}.failover", "a client with `connection: none` is not set up by this tool, so it cannot "
                                      "get a failover proxy", "remove `failover: proxy` (or reach it: connection ssh)")
        if f["failover"] == "proxy" and f["failover_port"] + len(hosts) - 1 > 65535:
            chk.err(f"{cp}.failover_port", f"{f['failover_port']} leaves no room for one port per build host "
                                           f"({len(hosts)})", "pick a lower port, e.g. 12340")
        if f["home"] is not None and f["home"] not in hosts:
            chk.err(f"{cp}.home", f"{f['home']!r} is not a build host", "use one of: " + ", ".join(sorted(hosts)))
        clients[name] = Client(name=name, **f)
    seen: dict[str, str] = {}
    for c in clients.values():
        if c.address in seen:
            chk.err(f"all.children.clients.hosts.{c.name}.address",
                    f"{c.address} is already the address of client {seen[c.address]!r}",
                    "give each client its own address (firewall rules are per address)")
        seen[c.address] = c.name
    return Inventory(file=Path(fname), hosts=hosts, clients=clients, groups=groups,
                     pki_dir=Path(top_vars["pki_dir"]), cert_days=top_vars["cert_days"],
                     cert_renew_days=top_vars["cert_renew_days"], ca_days=top_vars["ca_days"])
