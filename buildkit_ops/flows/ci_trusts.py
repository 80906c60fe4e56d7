"""remove-ci-trust and rotate-certs --ci-issuer: a CI trust's intermediate revoked at once, on every build host.

remove-ci-trust takes the trust out of the inventory, retires its intermediate (on the operator CA's CRL: every
certificate it signed is refused at the next handshake) and runs the roles it touches on every host: the CRL
and maps put in force in the gateway, the open connections of its jobs ended, the issuer's key of it deleted,
its networks out of the firewall's set. rotate-certs --ci-issuer retires every intermediate and makes new ones in
the same run (running jobs log in again; docs/ci.md)."""
from __future__ import annotations

from pathlib import Path

from buildkit_ops import inventory as inv_mod
from buildkit_ops.engine.contract import Options
from buildkit_ops.errors import FlowError
from buildkit_ops.flows.provision import provision, report_narrow
from buildkit_ops.inventory import Inventory, values
from buildkit_ops.inventory import edit as inventory_edit
from buildkit_ops.pki import ci_intermediates
from buildkit_ops.report.results import HostResult, Reporter

ROLES = frozenset({"firewall", "ci_issuer", "gateway"})


def _apply(inv: Inventory, rep: Reporter, what: str) -> list[HostResult]:
    results = provision(inv, inv.select(None), Options(roles=ROLES), Reporter(quiet=True))
    shown = report_narrow(rep, results, lambda st: st.role in ROLES)
    if any(r.error for r in results):
        raise FlowError(f"{what} is not in force on every build host (see above): fix that host and run "
                        f"`bkops provision` (the revocation stands in the PKI)")
    return shown


def remove_ci_trust(inventory: Path, name: str, rep: Reporter) -> list[HostResult]:
    try:
        values.machine_name(name)
    except values.BadValue as e:
        raise FlowError(f"{name!r}: {e.problem}\n  fix: {e.fix}", 2) from None
    inv = inv_mod.load(inventory)
    if name not in inv.ci_trust:
        kept = ci_intermediates.read(inv.pki_dir, name)
        if kept is None:
            raise FlowError(f"{inventory}: there is no CI trust {name!r} (all.vars.ci_trust has: "
                            f"{', '.join(sorted(inv.ci_trust)) or 'none'}); nothing was changed", 2)
    inv.check_files(inv.select(None))
    after = inventory_edit.remove_ci_trust(inventory, name) if name in inv.ci_trust else inv
    res = HostResult("inventory")
    rep.step(res, "inventory", f"ci_trust {name}", "changed" if name in inv.ci_trust else "ok",
             f"removed from {inventory}" if name in inv.ci_trust else "not there (an edit before): its intermediate "
                                                                       "is revoked now")
    ci_intermediates.current(after.pki_dir, sorted(after.ci_trust))
    rep.step(res, "pki", f"intermediate of {name}", "changed", "revoked (on the CRL from now on)")
    return [res, *_apply(after, rep, f"the removal of trust {name}")]


def rotate_ci_issuer(inv: Inventory, rep: Reporter) -> list[HostResult]:
    if not inv.ci_trust:
        raise FlowError(f"{inv.file}: there is no CI trust (all.vars.ci_trust): no intermediate to rotate", 2)
    inv.check_files(inv.select(None))
    old = ci_intermediates.renew(inv.pki_dir)
    ci_intermediates.current(inv.pki_dir, sorted(inv.ci_trust))
    res = HostResult("pki")
    for name in sorted(inv.ci_trust):
        rep.step(res, "pki", f"intermediate of {name}", "changed",
                 "replaced; the old one revoked" if name in old else "made")
    return [res, *_apply(inv, rep, "the new intermediates")]
