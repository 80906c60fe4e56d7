"""Check one value, or one mapping of keys, against the schema: the value as the model holds it, or an
InventoryError that names the file, the key's path, what is wrong and how to fix it."""
from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

from buildkit_ops.inventory import buildkit_versions as versions
from buildkit_ops.inventory import values as types
from buildkit_ops.inventory.model import (
    GC,
    BuildKit,
    GCPolicy,
    InventoryError,
    Limits,
    PruneSchedule,
    Registry,
    Vpn,
)
from buildkit_ops.inventory.schema import (
    BUILDKIT_KEYS,
    DEFAULT_POLICIES,
    GC_KEYS,
    LIMIT_KEYS,
    POLICY_ALIASES,
    POLICY_KEYS,
    PRUNE_KEYS,
    REGISTRY_KEYS,
    VPN_KEYS,
)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


class Checker:
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
        """The value as the model holds it, or an error naming the key (a list's item by its index)."""
        if kind.endswith("_list"):
            if not isinstance(value, list):
                self.err(path, f"must be a list, got {value!r}", "write it as [a, b]")
            return [self.check(kind.removesuffix("_list"), v, f"{path}[{i}]") for i, v in enumerate(value)]
        try:
            checked = types.kind(kind)(value)
        except types.BadValue as e:
            self.err(path, e.problem, e.fix)
        if kind == "path":   # relative to the inventory's folder
            p = Path(os.path.expanduser(checked))
            return str(p if p.is_absolute() else (self.base / p))
        return checked

    def fields(self, value: dict[str, Any], schema: dict[str, Any], path: str,
               required: tuple[str, ...] = ()) -> dict[str, Any]:
        self.unknown(value, schema, path)
        out = {}
        for key, (kind, default, _help) in schema.items():
            if key not in value or value[key] is None:
                if key in required:
                    self.err(f"{path}.{key}", "is required and missing", f"add `{key}:` to {path}")
                # (a default path is relative to the inventory's folder too, as a written one is)
                out[key] = (self.check(kind, default, f"{path}.{key}") if kind == "path" and default is not None
                            else copy.deepcopy(default))
                continue
            if kind in ("buildkit", "gc", "policies", "registries", "prune_schedule", "limits", "vpn"):
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

    def limits(self, value: Any, path: str) -> Limits:
        limits = Limits(**self.fields(self.mapping(value, path), LIMIT_KEYS, path))
        if limits.queue and not limits.builds:
            self.err(f"{path}.queue", "limits how many builds wait, but no build waits without `builds`",
                     "add `builds: N` (the most that run at once), or remove `queue:`")
        return limits

    def vpn(self, value: Any, path: str) -> Vpn:
        table = self.mapping(value, path)
        for key in table:
            if "key" in str(key).lower():
                self.err(f"{path}.{key}", "a key is never an inventory value: each machine makes its own key pair "
                                          "and keeps the private key (buildkit-ops keeps the public keys in "
                                          "pki_dir/vpn/)", f"remove `{key}:`")
        return Vpn(**self.fields(table, VPN_KEYS, path))

    def registries(self, value: Any, path: str) -> dict[str, Registry]:
        out = {}
        for host, conf in self.mapping(value, path).items():
            p = f"{path}.{host}"
            self.check("registry_host", host, p)
            conf = self.mapping(conf, p)
            self.unknown(conf, REGISTRY_KEYS, p)
            out[host] = Registry(**{k: self.check(REGISTRY_KEYS[k], v, f"{p}.{k}") for k, v in conf.items()})
        return out
