"""add-client, remove-client and update-clients as transactions, with stand-ins for the machines: what is checked
before anything changes, the order of the changes, and what the operator is told when a later step fails."""
from __future__ import annotations

import pytest

from buildkit_ops import inventory as I
from buildkit_ops.flows import clients as client_flows
from buildkit_ops.pki import certs as pki
from buildkit_ops.report.results import HostResult, Reporter

QUIET = Reporter(quiet=True)


class Machines:
    """Stand-ins for the client machine and the build hosts; records the order of what happened."""

    def __init__(self, preflight_error=None, host_fails=None, setup_error=None):
        self.log: list[str] = []
        self.preflight_error, self.host_fails, self.setup_error = preflight_error, host_fails, setup_error

    def preflight(self, inv, client, options):
        self.log.append(f"preflight {client.name}")
        if self.preflight_error:
            raise client_flows.ClientError(self.preflight_error)

    def provision(self, inv, options):
        drop = sorted(options.prune_clients) if isinstance(options.prune_clients, frozenset) else options.prune_clients
        self.log.append(f"provision{' --check' if options.check else ''} "
                        f"clients={sorted(c.address for c in inv.clients.values())} drop={drop}")
        out = []
        for h in inv.hosts:
            r = HostResult(h)
            if h == self.host_fails:
                r.error = "unreachable"
            out.append(r)
        return out

    def setup(self, inv, client, options, rep, res):
        self.log.append(f"setup{' --check' if options.check else ''} {client.name}")
        if self.setup_error:
            raise client_flows.ClientError(self.setup_error)

    def run(self, inv_path, req, check=False):
        return client_flows.add_client(inv_path, req, QUIET, check, self.preflight, self.provision, self.setup)


def test_add_client_checks_then_records_issues_opens_and_bootstraps_in_that_order(inv_path):
    m = Machines()
    m.run(inv_path, client_flows.ClientRequest("ci", address="10.77.0.40", ssh_key=str(inv_path.parent / "id")))
    assert m.log == ["preflight ci", "provision clients=['10.77.0.21', '10.77.0.40'] drop=False", "setup ci"]
    assert I.load(inv_path).clients["ci"].address == "10.77.0.40"
    assert pki.client_paths(inv_path.parent / "pki", "ci").crt.exists()


def test_an_unreachable_client_changes_nothing(inv_path):
    before = inv_path.read_text()
    m = Machines(preflight_error="ci: unreachable")
    with pytest.raises(client_flows.FlowError, match="nothing was changed: no certificate issued, no firewall opened, "
                                                      "and the inventory was not edited"):
        m.run(inv_path, client_flows.ClientRequest("ci", address="10.77.0.40"))
    assert m.log == ["preflight ci"] and inv_path.read_text() == before
    assert not pki.client_paths(inv_path.parent / "pki", "ci").crt.exists()


def test_a_host_whose_firewall_fails_stops_before_the_builder(inv_path):
    m = Machines(host_fails="build2")
    with pytest.raises(client_flows.FlowError, match="could not be updated on build2; the client's builder was not "
                                                      "set up"):
        m.run(inv_path, client_flows.ClientRequest("laptop"))
    assert "setup laptop" not in m.log


def test_a_builder_that_fails_says_how_to_finish_or_undo(inv_path):
    m = Machines(setup_error="laptop: buildx create failed")
    with pytest.raises(client_flows.FlowError) as e:
        m.run(inv_path, client_flows.ClientRequest("laptop"))
    assert "the firewall is open for laptop (10.77.0.21) on build1, build2" in str(e.value)
    assert "re-run `invoke add-client laptop`" in str(e.value) and "`invoke remove-client laptop`" in str(e.value)


def test_a_client_that_moves_has_its_old_address_closed(inv_path):
    m = Machines()
    m.run(inv_path, client_flows.ClientRequest("laptop", address="10.77.0.29/32"))
    assert "provision clients=['10.77.0.29'] drop=['laptop']" in m.log
    assert I.load(inv_path).clients["laptop"].address == "10.77.0.29"


def test_a_bad_address_for_a_known_client_is_refused_before_anything(inv_path):
    m = Machines()
    with pytest.raises(client_flows.FlowError, match="--address: '10.0.0.0/0' is every address") as e:
        m.run(inv_path, client_flows.ClientRequest("laptop", address="10.0.0.0/0"))
    assert e.value.code == 2 and m.log == []


def test_update_clients_sets_up_every_client_with_a_certificate_and_reports_the_unreachable(inv_path):
    """Which builders change is the buildx_builder role's plan (tests/unit/roles/test_buildx_builder.py); the flow
    runs every client that has a certificate through it, with the hosts' platforms, and goes on past one it
    cannot reach."""
    platforms = {"build1": "linux/amd64", "build2": "linux/amd64"}
    seen = []

    def setup(inv, client, options, rep, res):
        seen.append((client.name, options.check, dict(options.platforms)))
    [r] = client_flows.update_clients(inv_path, True, QUIET, lambda inv: platforms, setup)
    assert seen == [] and [(s.name, s.status) for s in r.steps] == [("builder buildkit-ops", "skipped")]
    inv = I.load(inv_path)
    pki.ensure_leaf(pki.client_paths(inv.pki_dir, "laptop"), pki.load_ca(inv.pki_dir), "laptop", 30, 1)
    client_flows.update_clients(inv_path, True, QUIET, lambda inv: platforms, setup)
    client_flows.update_clients(inv_path, False, QUIET, lambda inv: platforms, setup)
    assert seen == [("laptop", True, platforms), ("laptop", False, platforms)]

    def unreachable(inv, client, options, rep, res):
        raise client_flows.ClientError("cannot reach laptop: no answer")
    [r] = client_flows.update_clients(inv_path, False, QUIET, lambda inv: platforms, unreachable)
    assert r.unreachable and r.error == "cannot reach laptop: no answer"


def test_add_client_check_shows_every_change_and_makes_none(inv_path):
    before = inv_path.read_text()
    m = Machines()
    res = m.run(inv_path, client_flows.ClientRequest("ci", address="10.77.0.40", ssh_key=str(inv_path.parent / "id")),
                check=True)
    assert m.log == ["provision --check clients=['10.77.0.21', '10.77.0.40'] drop=False", "setup --check ci"]
    assert [(s.role, s.status) for s in res.steps[:2]] == [("inventory", "would change"), ("pki", "would change")]
    assert inv_path.read_text() == before and not pki.client_paths(inv_path.parent / "pki", "ci").crt.exists()


def test_pinning_a_known_client_records_its_home_and_sets_up_its_builder(inv_path):
    m = Machines()
    m.run(inv_path, client_flows.ClientRequest("laptop", home="build2"))
    assert I.load(inv_path).clients["laptop"].home == "build2"
    assert m.log[-1] == "setup laptop"
    with pytest.raises(client_flows.FlowError, match="'build9' is not a build host"):
        m.run(inv_path, client_flows.ClientRequest("laptop", home="build9"))
