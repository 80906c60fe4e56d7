"""The operator-side half of provisioning a host: the CA (created once), the host's server certificate
((re)issued when missing, signed by another CA, near expiry, or when the host's names in the inventory
changed), and the operator's own client certificate for the mutual-TLS proof. In check mode nothing is
written: the steps only say what would be issued. The CA key never leaves pki_dir."""
from __future__ import annotations

from buildkit_ops.engine.contract import Step
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.model import OPERATOR_NAME
from buildkit_ops.pki import certs as pki

OPERATOR_CN = OPERATOR_NAME


def ensure(inv: Inventory, host: BuildHost, check: bool, force: bool = False) -> list[Step]:
    steps = []
    ca = pki.load_ca(inv.pki_dir)
    if ca is None:
        if check:
            return [Step("pki", "CA", True, f"would create {inv.pki_dir}/ca.crt and ca.key (0600)"),
                    Step("pki", "server certificate", True, f"would issue for {', '.join(host.sans)}")]
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
    return steps


def operator_cert(inv: Inventory, ca: pki.CA) -> pki.Leaf:
    """A client certificate kept on the operator machine, used only through an SSH tunnel to prove that the
    server answers mutual TLS (the firewall does not open the port to the operator)."""
    leaf = pki.Leaf(inv.pki_dir / "operator" / "client.crt", inv.pki_dir / "operator" / "client.key", inv.pki_dir)
    pki.ensure_leaf(leaf, pki.signing_ca(inv.pki_dir, "client") or ca, OPERATOR_CN, inv.cert_days,
                    inv.cert_renew_days)
    return leaf
