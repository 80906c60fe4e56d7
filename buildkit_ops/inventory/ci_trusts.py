"""all.vars.ci_trust: each trust checked at load (buildkit_ops/ci_trust/rules.py says what a trust and a rule may
be), its rules' tenants known, its name a plain word (it names the trust's intermediate CA and certificates)."""
from __future__ import annotations

from typing import Any

from buildkit_ops.ci_trust import rules
from buildkit_ops.inventory.checker import Checker
from buildkit_ops.inventory.model import Tenant
from buildkit_ops.inventory.schema import CI_TRUST_KEYS, RULE_KEYS


def trusts(chk: Checker, value: Any, tenants: dict[str, Tenant]) -> dict[str, rules.Trust]:
    out = {}
    for name, raw in chk.mapping(value, "all.vars.ci_trust").items():
        tp = f"all.vars.ci_trust.{name}"
        chk.check("name", name, tp)
        if len(name) > 30:   # (it names the trust's intermediate CA, whose CN holds 64 characters in all)
            chk.err(tp, f"{name!r} is longer than 30 characters", "name the trust shortly, e.g. github")
        t = chk.mapping(raw, tp)
        chk.unknown(t, set(CI_TRUST_KEYS), tp)
        for key in ("issuer", "audience", "rules"):
            if t.get(key) is None:
                chk.err(f"{tp}.{key}", "is missing", f"set it: {CI_TRUST_KEYS[key][2]}")
        try:
            issuer = rules.issuer_url(t["issuer"], f"{tp}.issuer")
        except rules.BadTrust as e:
            chk.err(e.key, e.problem, e.fix)
        audience = t["audience"]
        if not isinstance(audience, str) or not rules.PATTERN.fullmatch(audience) or "*" in audience:
            chk.err(f"{tp}.audience", f"{audience!r} is not an audience", "write the `aud` the job asks its token "
                                                                          "for, e.g. buildkit-ops (no spaces)")
        minutes = chk.check("int:1-60", t.get("certificate_minutes", 60), f"{tp}.certificate_minutes")
        networks = chk.check("client_source_list", t.get("networks") or [], f"{tp}.networks")
        ca_file = chk.check("path", t["ca_file"], f"{tp}.ca_file") if t.get("ca_file") is not None else None
        if not isinstance(t["rules"], list) or not t["rules"]:
            chk.err(f"{tp}.rules", "must be a list of at least one rule (no rule: every token is refused)",
                    "add e.g. `- claims: {repository: org/app, ref: refs/heads/main}`")
        out[name] = rules.Trust(name, issuer, audience, tuple(_rule(chk, r, f"{tp}.rules[{i}]", tenants)
                                                              for i, r in enumerate(t["rules"])),
                                minutes, tuple(networks), ca_file)
    return out


def _rule(chk: Checker, raw: Any, rp: str, tenants: dict[str, Tenant]) -> rules.Rule:
    r = chk.mapping(raw, rp)
    chk.unknown(r, set(RULE_KEYS), rp)
    try:
        claims = rules.rule_claims(r.get("claims"), f"{rp}.claims")
    except rules.BadTrust as e:
        chk.err(e.key, e.problem, e.fix)
    tenant = r.get("tenant")
    if tenant is not None and tenant not in tenants:
        chk.err(f"{rp}.tenant", f"{tenant!r} is not a tenant", "use one of: " + (", ".join(sorted(tenants)) or
                                                                                "(none yet: add it under "
                                                                                "all.vars.tenants)"))
    role = chk.check("enum:developer,admin", r.get("role", "developer"), f"{rp}.role")
    limits = chk.limits(r.get("limits"), f"{rp}.limits")
    return rules.Rule(claims, tenant, role, limits.builds, limits.queue)
