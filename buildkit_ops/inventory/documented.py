"""A new deployment's inventory.yml, made from the schema: every key documented in place above it (what it
does, the default), the keys a deployment must set filled in (its build hosts and clients, how SSH reaches
them), every other key written out commented with its default, ready to uncomment (Kamal's self-documenting
config). Values go through the YAML serializer: a name or address can never add a key or a line."""
from __future__ import annotations

import textwrap
from typing import Any

import yaml

from buildkit_ops.inventory.schema import ALL_VAR_KEYS, BUILDKIT_KEYS, CLIENT_KEYS, GC_KEYS, HOST_KEYS

WIDTH = 100
# keys a host or client sets for itself (documented once, under its group), and the nested tables
PER_MACHINE = {"address", "names", "client_address", "private_address", "weight", "platforms", "emulate", "home",
               "connection", "ssh_address", "builder", "default_builder", "failover", "failover_port", "failover_image",
               "failover_image_archive", "placement", "role", "limits", "allow_wide_network", "vpn_address"}
NESTED = {"buildkit", "gc", "policies", "registries", "prune_schedule"}


def _scalar(value: Any) -> str:
    return str(yaml.safe_dump(value, default_flow_style=True, width=10_000)).strip().removesuffix("...").strip()


def _shown(kind: str, default: Any) -> Any:
    """A default as a person writes it: durations in their largest whole unit (7d, not 604800)."""
    if kind == "duration" and isinstance(default, int) and default > 0:
        for unit, seconds in (("d", 86400), ("h", 3600), ("m", 60)):
            if default % seconds == 0:
                return f"{default // seconds}{unit}"
        return f"{default}s"
    return default


def _doc(key: str, default: Any, text: str, indent: int) -> list[str]:
    said = "none" if default is None or default == [] or default == {} else _scalar(default)
    pad = " " * indent
    return [pad + "# " + line for line in textwrap.wrap(f"{key}: {text}. Default: {said}", WIDTH - indent - 2,
                                                          break_long_words=False, break_on_hyphens=False)]


def _keys(table: dict[str, tuple[str, Any, str]], indent: int, values: dict[str, Any],
          skip: frozenset[str] = frozenset()) -> list[str]:
    pad, out = " " * indent, []
    for key, (kind, default, text) in table.items():
        if key in skip or (kind in NESTED and key not in values):
            continue
        default = _shown(kind, default)
        out += _doc(key, default, text, indent)
        if key in values:
            out.append(f"{pad}{key}: {_scalar(values[key])}")
        else:
            out.append(f"{pad}# {key}: {'' if default is None else _scalar(default)}".rstrip())
        out.append("")
    return out


def render(hosts: dict[str, str], clients: dict[str, str], ssh: dict[str, Any]) -> str:
    """hosts and clients: name -> address; ssh: the all.vars values given (ssh_user, ssh_key, known_hosts, and
    any other all.vars key; `buildkit` a mapping of its keys, whose `gc` a mapping of its own)."""
    top = {k: v for k, v in ssh.items() if k != "buildkit"}
    bk = dict(ssh.get("buildkit") or {})
    gc = dict(bk.pop("gc", None) or {})
    lines = ["# buildkit-ops inventory, made by `bkops init`. Every key is documented above it; a commented key",
             "# shows its default: uncomment it to change it. A value set on a host overrides its group's, which",
             "# overrides all.vars (mappings such as `buildkit:` merge key by key). Relative paths are relative to",
             "# this file. Check it with `bkops provision --check`.", "", "all:", "  vars:"]
    lines += _keys(ALL_VAR_KEYS, 4, top)
    lines += _keys(HOST_KEYS, 4, top, skip=frozenset(PER_MACHINE))
    lines += ["    # buildkit: BuildKit server settings, for every host (a host may set its own).", "    buildkit:"]
    lines += _keys(BUILDKIT_KEYS, 6, bk)
    lines += ["      # gc: BuildKit's garbage collection of the cache (the GC policy is written in the terms of",
              "      # buildkit.version).", "      gc:"]
    lines += _keys(GC_KEYS, 8, gc)
    lines += ["        # policies: ordered GC rules, each with any of keep_duration, max_used, reserved, min_free,",
              "        # filters and all. Default: local sources and cache mounts 48h; anything unused 60 days; then",
              "        # 5GB; then everything down to 10GB.", "        # policies:",
              "        #   - keep_duration: 48h", "        #     filters: [type==source.local, type==exec.cachemount]",
              "        #   - all: true", "        #     max_used: 10GB", ""]
    lines += ["      # registries: per-registry settings of pulls and pushes done by the server, keyed by",
              "      # host[:port]: `ca` (a CA file on this machine), `http`, `insecure`, `mirrors`. Credentials",
              "      # never go here: they travel from the client with each build. Default: none",
              "      # registries:", "      #   registry.example.com:5000:", "      #     ca: registry-ca.crt", "",
              "      # prune_schedule: a scheduled prune on each host (a systemd timer): `calendar` (daily, weekly,",
              "      # \"Sun 03:00\") and any of keep_storage, keep_duration, filters, all. Default: none",
              "      # prune_schedule: {calendar: daily, keep_storage: 20GB}", "", "  children:"]
    lines += ["    # buildhosts: the build servers, each with the `address` SSH connects to. Per host:"]
    lines += _keys({k: v for k, v in HOST_KEYS.items() if k in PER_MACHINE and k != "address"}, 4, {})
    lines += ["    buildhosts:", "      hosts:"]
    for name, address in hosts.items():
        lines += [f"        {_scalar(name)}:", f"          address: {_scalar(address)}"]
    lines += ["", "    # clients: developer machines and CI runners that build on the servers, each with the",
              "    # `address` the build hosts see its connections come from (`bkops add-client` adds more). Per",
              "    # client:"]
    lines += _keys({k: v for k, v in CLIENT_KEYS.items() if k in PER_MACHINE and k != "address"}, 4, {})
    lines += ["    clients:", "      hosts:" + ("" if clients else " {}")]
    for name, address in clients.items():
        lines += [f"        {_scalar(name)}:", f"          address: {_scalar(address)}"]
    return "\n".join(lines).rstrip() + "\n"
