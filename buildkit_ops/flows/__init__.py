"""One module per task family: what is checked before anything changes, in which order things change, and what
the operator is told. Machines are reached through the engine; decisions are unit-tested with stand-ins."""

from buildkit_ops.flows import (
    audit,
    builds,
    cache_prune,
    ci_login,
    ci_snippets,
    ci_trusts,
    clients,
    doctor,
    init,
    kubernetes,
    pki_backup,
    provision,
    rotation,
    status,
    tenants,
    vpn_rotation,
)

__all__ = ["audit", "builds", "cache_prune", "ci_login", "ci_snippets", "ci_trusts", "clients", "doctor", "init",
           "kubernetes", "pki_backup", "provision", "rotation", "status", "tenants", "vpn_rotation"]
