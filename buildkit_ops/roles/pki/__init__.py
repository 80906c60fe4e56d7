"""pki: on the operator machine. The CA is created once; the host's server
certificate is (re)issued when missing, signed by another CA, near expiry, or
when the host's names in the inventory changed. In check mode nothing is
written: the steps only say what would be issued."""
from __future__ import annotations

from pathlib import Path

from ... import pki
from ...inventory import BuildHost, Inventory
from .. import Step


def ensure(inv: Inventory, host: BuildHost, check: bool, force: bool = False) -> tuple[list[Step], pki.CA | None]:
    steps = []
    ca = pki.load_ca(inv.pki_dir)
    if ca is None:
        if check:
            return [Step("pki", "CA", True, f"would create {inv.pki_dir}/ca.crt and ca.key (0600)"),
                    Step("pki", "server certificate", True, f"would issue for {', '.join(host.sans)}")], None
        ca, _ = pki.ensure_ca(inv.pki_dir, inv.ca_days)
        steps.append(Step("pki", "CA", True, f"created {inv.pki_dir}/ca.crt (key 0600, stays here)"))
    else:
        steps.append(Step("pki", "CA", False, f"{inv.pki_dir}/ca.crt"))
    signer = pki.signing_ca(inv.pki_dir, "server") or ca
    leaf = pki.server_paths(inv.pki_dir, host.name)
    reason = pki.reissue_reason(leaf.crt, leaf.key, signer, inv.cert_renew_days, host.sans)
    if force and not reason:
        reason = "rotation"
    if reason and not check:
        pki.ensure_leaf(leaf, signer, host.name, inv.cert_days, inv.cert_renew_days, host.sans, force=True)
    steps.append(Step("pki", "server certificate", bool(reason),
                      (f"{'would issue' if check else 'issued'} ({reason}) for {', '.join(host.sans)}"
                       if reason else f"valid for {', '.join(host.sans)}")))
    return steps, ca


def ca_bundle(pki_dir: Path) -> bytes:
    """What servers trust for client certificates: the CA (and, during a CA rotation, the next one)."""
    out = (pki_dir / "ca.crt").read_bytes()
    nxt = pki_dir / "next" / "ca.crt"
    if nxt.exists():
        out += nxt.read_bytes()
    return out
