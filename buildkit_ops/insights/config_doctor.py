"""The config doctor: what the running buildkitd's own report says of its cache GC and history, against the
inventory. BuildKit ignores what it does not understand and prints its effective GC rules with
`buildctl debug workers -v`, so the rules it applies are the ones to judge, not the file we wrote:
- rules other than the inventory's (the container runs an older config: provision applies it);
- a rule whose filter can never match: filters inside one string are ANDed, and a record has one type, so
  "type==a,type==b" is dead (BuildKit's own built-in default had this bug before v0.31, #6856);
- a floor with no ceiling: from v0.17 a rule with only a reserved space (what `keepBytes` now means) frees
  nothing until the disk is full;
- history switched off while `status` and `builds` are expected to report builds from it.
"""
from __future__ import annotations

import re

from buildkit_ops.inventory import BuildHost, GCPolicy
from buildkit_ops.inventory import buildkit_versions as versions

_UNITS = {"B": 1, "kB": 10**3, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12, "PB": 10**15,
          "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40, "PiB": 2**50}
_SIZED = ("max_used", "reserved", "min_free")


def printed_size(text: str) -> float | None:
    """A size as buildctl prints it (5GB, 512MB, 1.5GiB), in bytes."""
    m = re.fullmatch(r"([0-9.]+(?:e[+-]?[0-9]+)?)\s*([A-Za-z]*)", text.strip())
    if not m or (m.group(2) or "B") not in _UNITS:
        return None
    return float(m.group(1)) * _UNITS[m.group(2) or "B"]


def printed_duration(text: str) -> int | None:
    """A Go duration as buildctl prints it (48h0m0s), in seconds."""
    parts = re.findall(r"([0-9.]+)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        return None
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return round(sum(float(n) * scale[u] for n, u in parts))


def dead_filters(filters: str) -> list[str]:
    """The filter strings (space-separated, as printed) that AND two record types, so match nothing."""
    return [f for f in filters.split() if len(re.findall(r"(?:^|,)type==", f)) > 1]


def _same_rule(wanted: GCPolicy, running: dict[str, str]) -> bool:
    if bool(wanted.all) != (running.get("all") == "true"):
        return False
    if " ".join(wanted.filters or []) != running.get("filters", ""):
        return False
    if (wanted.keep_duration or None) != (printed_duration(running.get("keep_duration", "")) or None):
        return False
    for field in _SIZED:
        want, got = getattr(wanted, field), running.get(field)
        if isinstance(want, str):            # a share of the disk: BuildKit prints the bytes it came to
            if got is None:
                return False
            continue
        if (want is None) != (got is None):
            return False
        if want is not None and got is not None:
            printed = printed_size(got)
            if printed is None or abs(printed - want) > max(1.0, want * 0.01):   # printed with 3-4 digits
                return False
    return True


def findings(host: BuildHost, running_version: str | None, rules: list[dict[str, str]],
             disk_size: int | None) -> list[str]:
    """What the doctor says of one host (empty: nothing to say). `rules` are reported_rules() of the running
    buildkitd; no rules means it did not answer, and nothing is judged of them."""
    bk = host.buildkit
    out: list[str] = []
    if bk.history_max_entries == 0:
        out.append("build history is off (buildkit.history_max_entries: 0): `status` and `builds` see no builds; "
                   "set it above 0 to have them")
    if not rules:
        return out
    version = running_version or bk.version
    for i, rule in enumerate(rules):
        dead = dead_filters(rule.get("filters", ""))
        if dead:
            why = (" (BuildKit's built-in default rule before v0.31, #6856: set buildkit.gc.policies or upgrade)"
                   if versions.supported(version) and versions.minor(version) < versions.DEFAULT_GC_FIXED else "")
            out.append(f"GC rule #{i} never matches: its filter {', '.join(dead)} asks for several record types at "
                       f"once{why}; write each type as a filter of its own")
    if versions.supported(version) and versions.minor(version) >= versions.SPACE_TERMS and \
            not any("max_used" in r or "min_free" in r for r in rules):
        disk = f" ({disk_size / 1e9:.0f} GB)" if disk_size else ""
        out.append(f"the GC keeps a floor (reserved space) but no rule sets a ceiling: the cache grows until the "
                   f"disk{disk} is full; set buildkit.gc.max_used or min_free (keep_storage is only the floor "
                   f"from v0.17)")
    wanted = bk.gc.policies
    if wanted and (len(wanted) != len(rules) or not all(map(_same_rule, wanted, rules))):
        out.append(f"buildkitd applies {len(rules)} GC rule(s) other than the inventory's {len(wanted)}: its "
                   f"container runs an older config; run `invoke provision --host {host.name}`")
    return out
