"""rotate-certs: the CA rotation's phases with stand-ins for the machines: order, what signs when, resuming after
an interruption, pausing for CI runners, not stranding a client. The PKI is real (in a scratch folder)."""
from __future__ import annotations

from pathlib import Path

import pytest

from buildkit_ops import inventory as I
from buildkit_ops.flows import rotation
from buildkit_ops.pki import certs as pki
from buildkit_ops.report.results import Reporter

QUIET = Reporter(quiet=True)


class FakeFleet:
    """Records what the rotation asks of the machines, and can fail on the n-th provision."""

    def __init__(self, fail_provision_at: int | None = None, unreachable: tuple[str, ...] = ()):
        self.calls: list[str] = []
        self.fail_at, self.unreachable = fail_provision_at, unreachable

    def provision_all(self, inv, rep, res, what, wait, force, reissue=False, hosts=None):
        self.calls.append(f"provision: {what} (server cert signed by {_signer(inv, 'server')})")
        if self.fail_at is not None and len([c for c in self.calls if c.startswith("provision")]) == self.fail_at:
            raise rotation.RotationError("host down")
        return {h: "linux/amd64" for h in inv.hosts}

    def rebootstrap(self, inv, c, rep, res, reissue, platforms):
        if c.name in self.unreachable:
            self.calls.append(f"client {c.name}: unreachable")
            return False
        leaf = pki.client_paths(inv.pki_dir, c.name)
        pki.ensure_leaf(leaf, pki.signing_ca(inv.pki_dir, "client"), c.name, inv.cert_days, inv.cert_renew_days,
                        force=reissue)
        self.calls.append(f"client {c.name}: cert from {_issuer(leaf.crt, inv)}")
        return True

    def platforms(self, inv):
        return {h: "linux/amd64" for h in inv.hosts}


def _signer(inv, kind) -> str:
    return "next" if pki.rotation_state(inv.pki_dir).get("signing", {}).get(kind) == "next" else "current"


def _issuer(crt: Path, inv) -> str:
    cert = pki.load_cert(crt)
    nxt = pki.load_ca(inv.pki_dir / "next")
    return "next" if nxt and pki.signed_by(cert, nxt) else "current"


def fleet_of(fake: FakeFleet) -> rotation.Fleet:
    return rotation.Fleet(fake.provision_all, fake.rebootstrap, fake.platforms)


def test_ca_rotation_runs_five_phases_in_an_order_that_strands_nobody(inv_path):
    inv = I.load(inv_path)
    old = pki.load_ca(inv.pki_dir).cert.serial_number
    fake = FakeFleet()
    res = rotation.rotate_ca(inv, QUIET, 10, False, fleet_of(fake))
    assert fake.calls == [
        "provision: trust old and next CA (server cert signed by current)",   # 2: servers trust both
        "client laptop: cert from next",                                       # 3: clients move to the next CA
        "provision: server certificate from the next CA (server cert signed by next)",   # 4: servers move
        "provision: trust only the new CA (server cert signed by current)",   # 5: the next CA is the CA now
        "client laptop: cert from current",                                    # (bundles without the old CA)
    ]
    assert [s.name for s in res.steps if s.role == "rotation"] == [
        "phase 1/5 next-ca", "phase 2/5 servers-trust-both", "phase 3/5 clients-new", "phase 4/5 servers-new",
        "phase 5/5 drop-old"]
    assert pki.load_ca(inv.pki_dir).cert.serial_number != old
    assert (inv.pki_dir / "retired" / f"ca-{old:x}.crt").exists() and not (inv.pki_dir / "rotation.yml").exists()


def test_a_ca_rotation_pauses_for_ci_runners_before_servers_leave_the_ca_they_trust(inv_path):
    """A CI runner gets its new files in phase 3 like every client, but only the operator can put them into the
    CI: phase 4 (servers signed by the next CA) waits for --ci-updated."""
    inv_path.write_text(inv_path.read_text().replace(
        "        laptop:\n", "        ci-run:\n          address: 10.77.0.50\n          connection: none\n"
                           "        laptop:\n", 1))
    inv = I.load(inv_path)
    assert inv.clients["ci-run"].connection == "none"
    fake = FakeFleet()
    with pytest.raises(rotation.RotationError, match="paused after phase 3/5: the CI runners ci-run need their new "
                                                     "secrets .* `invoke rotate-certs --ca --ci-updated`"):
        rotation.rotate_ca(inv, QUIET, 10, False, fleet_of(fake))
    assert pki.rotation_state(inv.pki_dir)["done"] == ["next-ca", "servers-trust-both", "clients-new"]
    assert not any("server certificate from the next CA" in c for c in fake.calls)   # no server moved yet
    with pytest.raises(rotation.RotationError, match="paused after phase 3/5"):   # a re-run without the flag
        rotation.rotate_ca(inv, QUIET, 10, False, fleet_of(FakeFleet()))
    fake = FakeFleet()
    rotation.rotate_ca(inv, QUIET, 10, False, fleet_of(fake), ci_updated=True)
    assert fake.calls[0] == "provision: server certificate from the next CA (server cert signed by next)"
    assert not (inv.pki_dir / "rotation.yml").exists()


def test_an_interrupted_ca_rotation_resumes_where_it_stopped(inv_path):
    inv = I.load(inv_path)
    with pytest.raises(rotation.RotationError, match="host down"):
        rotation.rotate_ca(inv, QUIET, 10, False, fleet_of(FakeFleet(fail_provision_at=2)))  # phase 4 fails
    assert pki.rotation_state(inv.pki_dir)["done"] == ["next-ca", "servers-trust-both", "clients-new"]
    fake = FakeFleet()
    res = rotation.rotate_ca(inv, QUIET, 10, False, fleet_of(fake))
    assert res.steps[0].detail == "phases already done: next-ca, servers-trust-both, clients-new"
    assert fake.calls[0] == "provision: server certificate from the next CA (server cert signed by next)"
    assert not (inv.pki_dir / "rotation.yml").exists()


def test_a_ca_rotation_does_not_drop_the_old_ca_while_a_client_is_unreachable(inv_path):
    inv = I.load(inv_path)
    with pytest.raises(rotation.RotationError, match="would strand them"):
        rotation.rotate_ca(inv, QUIET, 10, False, fleet_of(FakeFleet(unreachable=("laptop",))))
    assert pki.rotation_state(inv.pki_dir)["done"] == ["next-ca", "servers-trust-both"]
    fake = FakeFleet(unreachable=("laptop",))
    rotation.rotate_ca(inv, QUIET, 10, True, fleet_of(fake))  # --force: strand it, knowingly
    assert "provision: trust only the new CA (server cert signed by current)" in fake.calls
