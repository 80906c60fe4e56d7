"""What each BuildKit version understands in buildkitd.toml, and the cache GC policy in its terms.

BuildKit ignores keys it does not know, silently: a GC policy written in another version's terms would be
dropped and the disk would fill. So the config is written for the version in the inventory
(`buildkit.version`), only with keys that version knows, and a GC value it cannot express is an inventory
error. Supported: v0.13 (Debian 12's, the lab's) through v0.35 (current, 2026-11).

The key tables are read from BuildKit's own config structs at each release tag (moby/buildkit,
cmd/buildkitd/config/config.go and util/resolver/config/config.go, `toml:` tags; docs/buildkitd.toml.md
describes the same keys):
  v0.13.2  the base below
  v0.14.0  + [dockerfile.v0], [gateway.v0], [system] platformsCacheMaxAge
  v0.15.0  + worker.containerd.defaultCgroupParent
  v0.17.0  GC in space terms: worker `reservedSpace`, `maxUsedSpace`, `minFreeSpace` and the same three per
           gcpolicy rule; `gckeepstorage` and `keepBytes` stay as deprecated aliases of the reserved space
           (cmd/buildkitd/main.go getGCPolicy: a rule's ReservedSpace = KeepBytes when unset;
           config/gcpolicy.go DefaultGCPolicy: GCReservedSpace = GCKeepStorage; read at tag v0.17.3).
  v0.20.0  + [cdi] disabled, specDirs, autoAllowed
  v0.26.0  + provenanceEnvDir
  v0.29.0  + [cache.gha]
  v0.30.0  + [log] level (top-level `debug` / `trace` deprecated for it)
  v0.31.0  + proxyNetwork, [system] maxRegistryConcurrency; the built-in default GC policy's first rule
           matches again (#6856: on v0.30 and older its filter matched no record)
  v0.32.0  no new key (v0.32.2 read at its tag)
  v0.33.0  no new key; `[history] maxEntries = 0` switches history off (#7040); v0.33.1 verifies blob digests
  v0.34.0  + [system] sessionAuthTimeout, [system.compaction] (enabled, idleTimeout, maxRetry, writesPerCheck,
           sizeWatermark, sizeGrowthPercent, minReclaimBytes, minReclaimPercent, minReclaimPercentFloor),
           worker.containerd.hypervIsolation (Windows); v0.34.2 no new key (it fixes GHSA-w26x-xg27-7qjc and
           GHSA-2fqp-xg6f-v7gj: security_floor.py)
  v0.35.0  no new key ([cache.gha] takes a signing config; url and token unchanged). v0.34.0, v0.34.2 and
           v0.35.0 read at their tags from the Go module proxy; v0.35.1 is not served there (403, "not
           available"), so it is taken to add no key (a patch release; its notes name none).
The semantics carry over: v0.13's `keepBytes` is the size a rule prunes down to; from v0.17 a rule with only
`maxUsedSpace` prunes down to it the same way (cache/manager.go calculateKeepBytes), and `reservedSpace` /
`minFreeSpace` are new ideas with no v0.13 equivalent.
"""
from __future__ import annotations

import re
from typing import Any

OLDEST, NEWEST = 13, 35           # minor versions of v0 this module knows
SPACE_TERMS = 17                  # the first minor version with reservedSpace / maxUsedSpace / minFreeSpace
LOG_LEVEL = 30                    # the first with [log] level, which replaces the top-level `debug`
DEFAULT_GC_FIXED = 31             # the first whose built-in default GC policy has no dead first rule (#6856)
HISTORY_OFF = 33                  # the first where `[history] maxEntries = 0` means no history at all

_BASE = {
    "debug", "trace", "root", "insecure-entitlements", "log.format", "otel.socketPath",
    "grpc.address", "grpc.debugAddress", "grpc.uid", "grpc.gid", "grpc.securityDescriptor",
    "grpc.tls.cert", "grpc.tls.key", "grpc.tls.ca",
    "worker.oci.enabled", "worker.oci.labels", "worker.oci.platforms", "worker.oci.snapshotter",
    "worker.oci.rootless", "worker.oci.noProcessSandbox", "worker.oci.userRemapUnsupported", "worker.oci.binary",
    "worker.oci.proxySnapshotterPath", "worker.oci.defaultCgroupParent", "worker.oci.stargzSnapshotter",
    "worker.oci.apparmor-profile", "worker.oci.selinux", "worker.oci.max-parallelism",
    "worker.oci.networkMode", "worker.oci.cniConfigPath", "worker.oci.cniBinaryPath", "worker.oci.cniPoolSize",
    "worker.oci.bridgeName", "worker.oci.bridgeSubnet",
    "worker.oci.gc", "worker.oci.gckeepstorage",
    "worker.oci.gcpolicy.all", "worker.oci.gcpolicy.keepBytes", "worker.oci.gcpolicy.keepDuration",
    "worker.oci.gcpolicy.filters",
    "worker.containerd.address", "worker.containerd.enabled", "worker.containerd.labels",
    "worker.containerd.platforms", "worker.containerd.namespace", "worker.containerd.snapshotter",
    "worker.containerd.apparmor-profile", "worker.containerd.selinux", "worker.containerd.max-parallelism",
    "worker.containerd.rootless", "worker.containerd.runtime.name", "worker.containerd.runtime.path",
    "worker.containerd.runtime.options", "worker.containerd.gc", "worker.containerd.gckeepstorage",
    "worker.containerd.networkMode", "worker.containerd.cniConfigPath", "worker.containerd.cniBinaryPath",
    "worker.containerd.cniPoolSize", "worker.containerd.bridgeName", "worker.containerd.bridgeSubnet",
    "worker.containerd.gcpolicy.all", "worker.containerd.gcpolicy.keepBytes",
    "worker.containerd.gcpolicy.keepDuration", "worker.containerd.gcpolicy.filters",
    "registry.*.mirrors", "registry.*.http", "registry.*.insecure", "registry.*.ca", "registry.*.keypair.key",
    "registry.*.keypair.cert", "registry.*.tlsconfigdir",
    "dns.nameservers", "dns.options", "dns.searchDomains", "history.maxAge", "history.maxEntries",
}
_ADDED = {
    14: {"dockerfile.v0.enabled", "gateway.v0.enabled", "gateway.v0.allowedRepositories",
         "system.platformsCacheMaxAge"},
    15: {"worker.containerd.defaultCgroupParent"},
    17: {f"worker.{w}.{k}" for w in ("oci", "containerd")
         for k in ("reservedSpace", "maxUsedSpace", "minFreeSpace", "gcpolicy.reservedSpace",
                   "gcpolicy.maxUsedSpace", "gcpolicy.minFreeSpace")},
    20: {"cdi.disabled", "cdi.specDirs", "cdi.autoAllowed"},
    26: {"provenanceEnvDir"},
    29: {"cache.gha.url", "cache.gha.token"},
    30: {"log.level"},
    31: {"proxyNetwork", "system.maxRegistryConcurrency"},
    34: {"system.sessionAuthTimeout", "worker.containerd.hypervIsolation",
         *(f"system.compaction.{k}" for k in ("enabled", "idleTimeout", "maxRetry", "writesPerCheck", "sizeWatermark",
                                              "sizeGrowthPercent", "minReclaimBytes", "minReclaimPercent",
                                              "minReclaimPercentFloor"))},
}


class Unexpressible(ValueError):
    """An inventory value the chosen BuildKit version has no key for."""

    def __init__(self, field: str, since: int):
        self.field, self.since = field, since
        super().__init__(f"{field} needs BuildKit v0.{since} or newer")


def minor(version: str) -> int:
    """'v0.13.2' -> 13."""
    m = re.fullmatch(r"v0\.([0-9]+)\.[0-9]+", version)
    if not m:
        raise ValueError(f"{version} is not a v0.x.y BuildKit version")
    return int(m.group(1))


def supported(version: str) -> bool:
    try:
        return OLDEST <= minor(version) <= NEWEST
    except ValueError:
        return False


def known_keys(version: str) -> set[str]:
    m = minor(version)
    keys = set(_BASE)
    for since, added in _ADDED.items():
        if m >= since:
            keys |= added
    return keys


def worker_gc(gc: Any, version: str) -> dict[str, Any]:
    """The [worker.oci] GC keys for `version`, from the inventory's gc (enabled, keep_storage, reserved,
    max_used, min_free). keep_storage is the size the default rules prune down to; BuildKit uses it only when
    no rule is given (which we always give), and from v0.17 it is called reservedSpace."""
    out: dict[str, Any] = {"gc": gc.enabled}
    if minor(version) < SPACE_TERMS:
        for field in ("reserved", "max_used", "min_free"):
            if getattr(gc, field) is not None:
                raise Unexpressible(f"gc.{field}", SPACE_TERMS)
        out["gckeepstorage"] = gc.keep_storage
        return out
    out["reservedSpace"] = gc.reserved if gc.reserved is not None else gc.keep_storage
    if gc.max_used is not None:
        out["maxUsedSpace"] = gc.max_used
    if gc.min_free is not None:
        out["minFreeSpace"] = gc.min_free
    return out


def policy(rule: Any, version: str, index: int = 0) -> dict[str, Any]:
    """One [[worker.oci.gcpolicy]] rule for `version`, from an inventory rule (all, filters, keep_duration,
    max_used, reserved, min_free). max_used is v0.13's keepBytes and v0.17's maxUsedSpace."""
    out: dict[str, Any] = {}
    if rule.all is not None:
        out["all"] = rule.all
    if rule.filters is not None:
        out["filters"] = list(rule.filters)
    if rule.keep_duration is not None:
        out["keepDuration"] = f"{rule.keep_duration}s"
    if minor(version) < SPACE_TERMS:
        for field in ("reserved", "min_free"):
            if getattr(rule, field) is not None:
                raise Unexpressible(f"gc.policies[{index}].{field}", SPACE_TERMS)
        if rule.max_used is not None:
            out["keepBytes"] = rule.max_used
        return out
    for field, key in (("reserved", "reservedSpace"), ("max_used", "maxUsedSpace"), ("min_free", "minFreeSpace")):
        if getattr(rule, field) is not None:
            out[key] = getattr(rule, field)
    return out


def read_policy(table: dict[str, Any], version: str) -> dict[str, Any]:
    """The inverse of `policy`: a rule as written in `version`'s terms, back in the inventory's terms."""
    names = {"all": "all", "filters": "filters", "keepDuration": "keep_duration"}
    if minor(version) < SPACE_TERMS:
        names["keepBytes"] = "max_used"
    else:
        names.update(reservedSpace="reserved", maxUsedSpace="max_used", minFreeSpace="min_free",
                     keepBytes="reserved")  # (the deprecated alias, as BuildKit reads it)
    out: dict[str, Any] = {}
    for key, value in table.items():
        out[names[key]] = int(value[:-1]) if key == "keepDuration" else value
    return out


REPORTED = {"All": "all", "Filters": "filters", "Keep Duration": "keep_duration", "Keep Bytes": "max_used",
            "Reserved Space": "reserved", "Max Used Space": "max_used", "Min Free Space": "min_free"}


def reported_rules(workers_verbose: str) -> list[dict[str, str]]:
    """The GC rules a running buildkitd applies, as `buildctl debug workers -v` prints them (first worker),
    in the inventory's names; values as printed (durations like 48h0m0s, sizes like 5GB)."""
    rules: list[dict[str, str]] = []
    for line in workers_verbose.splitlines():
        if line.startswith("GC Policy rule#"):
            rules.append({})
        elif rules and line.startswith("\t") and ":" in line:
            key, _, value = line.strip().partition(":")
            if key in REPORTED:
                rules[-1][REPORTED[key]] = value.strip()
        elif rules and not line.startswith("\t"):
            break   # the next worker
    return rules
