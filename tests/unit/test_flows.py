"""The decisions of the flows, with stand-ins for the machines: the CA rotation's phases (order, what signs
when, resuming after an interruption, not stranding a client), the doctor's ladder, and the add-client
transaction's order and recovery messages. The PKI and the inventory files are real (in a scratch folder)."""
from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

from buildkit_ops import inventory as I
from buildkit_ops.clients import builder as clients
from buildkit_ops.flows import clients as client_flows
from buildkit_ops.flows import doctor, rotation
from buildkit_ops.pki import certs as pki
from buildkit_ops.report.output import HostResult, Reporter

QUIET = Reporter(quiet=True)


@pytest.fixture
def inv_path(tmp_path) -> Path:
    """The shipped inventory in a scratch folder, with its own PKI and an existing ssh key."""
    text = (ROOT / "inventory.yml").read_text()
    (tmp_path / "id").write_text("key")
    data = yaml.safe_load(text)
    data["all"]["vars"].update(ssh_key=str(tmp_path / "id"), pki_dir=str(tmp_path / "pki"))
    data["all"]["vars"]["buildkit"].pop("image_archive")
    data["all"]["vars"]["buildkit"].pop("registries")
    data["all"]["children"]["clients"]["hosts"]["laptop"].pop("failover_image_archive")
    p = tmp_path / "inventory.yml"
    p.write_text(text.split("all:")[0] + yaml.safe_dump(data, sort_keys=False))
    pki.ensure_ca(tmp_path / "pki", 3650)
    return p


# ------------------------------------------------------------------ rotation

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
    assert [s["name"] for s in res.steps if s["role"] == "rotation"] == [
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
    assert res.steps[0]["detail"] == "phases already done: next-ca, servers-trust-both, clients-new"
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


# ------------------------------------------------------------------ doctor

def looked(inv, client_name="laptop", cert=True, ca="current", builder=True, tcp="open", resolve=None) -> dict:
    """What doctor's script would find on the client."""
    import base64
    found = {"builder": "present" if builder else "absent", "tcp0": tcp, "tcp1": tcp}
    if resolve:
        found["resolve0"] = found["resolve1"] = resolve
    if cert:
        leaf = pki.client_paths(inv.pki_dir, client_name)
        pki.ensure_leaf(leaf, pki.load_ca(inv.pki_dir), client_name, 30, 1)
        found["cert"] = base64.b64encode(leaf.crt.read_bytes()).decode()
    bundle = (inv.pki_dir / "ca.crt").read_bytes() if ca == "current" else pki.create_ca(
        inv.pki_dir.parent / "other", 30).pem
    found["ca"] = base64.b64encode(bundle).decode()
    return found


def issue_servers(inv):
    for h in inv.hosts.values():
        pki.ensure_leaf(pki.server_paths(inv.pki_dir, h.name), pki.load_ca(inv.pki_dir), h.name, 30, 1,
                        server_names=h.sans)


@pytest.mark.parametrize("case,expect", [
    (dict(), "ok"),
    (dict(tcp="blocked"), "TCP blocked"),
    (dict(cert=False), "no client certificate"),
    (dict(ca="other"), "TLS unknown CA: laptop does not trust"),
    (dict(builder=False), "builder missing"),
])
def test_the_doctor_ladder_names_the_first_rung_that_fails(inv_path, case, expect):
    inv = I.load(inv_path)
    issue_servers(inv)
    findings = doctor.diagnose(inv, inv.clients["laptop"], looked(inv, **case), dt.datetime.now(dt.timezone.utc))
    assert [f[0] for f in findings] == ["build1", "build2"]
    for _host, verdict, line in findings:
        assert (verdict == "ok") == (expect == "ok") and (expect in line if expect != "ok" else "reachable" in line)


def test_the_doctor_sees_an_expired_certificate_and_a_renamed_server(inv_path):
    inv = I.load(inv_path)
    issue_servers(inv)
    found = looked(inv)
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=40)
    assert all("expired certificate" in line for _, _, line in doctor.diagnose(inv, inv.clients["laptop"], found,
                                                                              later))
    inv.hosts["build1"].client_address = "build1.example.com"
    [b1, b2] = doctor.diagnose(inv, inv.clients["laptop"], found, dt.datetime.now(dt.timezone.utc))
    assert "name mismatch" in b1[2] and b2[1] == "ok"


# ------------------------------------------------------------------ add-client

class Machines:
    """Stand-ins for the client machine and the build hosts; records the order of what happened."""

    def __init__(self, preflight_error=None, host_fails=None, bootstrap_error=None):
        self.log: list[str] = []
        self.preflight_error, self.host_fails, self.bootstrap_error = preflight_error, host_fails, bootstrap_error

    def preflight(self, client):
        self.log.append(f"preflight {client.name}")
        if self.preflight_error:
            raise clients.ClientError(self.preflight_error)

        class Sess:
            def close(s):
                self.log.append("close")
        return Sess(), {"buildx": "v0.13"}

    def provision(self, inv, drop):
        self.log.append(f"provision clients={sorted(c.address for c in inv.clients.values())} drop={drop}")
        out = []
        for h in inv.hosts:
            r = HostResult(h)
            if h == self.host_fails:
                r.error = "unreachable"
            out.append(r)
        return out

    def bootstrap(self, inv, client, sess, facts, platforms, rep, res):
        self.log.append(f"bootstrap {client.name}")
        if self.bootstrap_error:
            raise clients.ClientError(self.bootstrap_error)

    def run(self, inv_path, req):
        return client_flows.add_client(inv_path, req, QUIET, self.preflight, self.provision, self.bootstrap)


def test_add_client_checks_then_records_issues_opens_and_bootstraps_in_that_order(inv_path):
    m = Machines()
    m.run(inv_path, client_flows.ClientRequest("ci", address="10.77.0.40", ssh_key=str(inv_path.parent / "id")))
    assert m.log == ["preflight ci", "provision clients=['10.77.0.21', '10.77.0.40'] drop=False", "bootstrap ci",
                     "close"]
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
    assert "bootstrap laptop" not in m.log and m.log[-1] == "close"


def test_a_builder_that_fails_says_how_to_finish_or_undo(inv_path):
    m = Machines(bootstrap_error="laptop: buildx create failed")
    with pytest.raises(client_flows.FlowError) as e:
        m.run(inv_path, client_flows.ClientRequest("laptop"))
    assert "the firewall is open for laptop (10.77.0.21) on build1, build2" in str(e.value)
    assert "re-run `invoke add-client laptop`" in str(e.value) and "`invoke remove-client laptop`" in str(e.value)


def test_a_client_that_moves_has_its_old_address_closed(inv_path):
    m = Machines()
    m.run(inv_path, client_flows.ClientRequest("laptop", address="10.77.0.29/32"))
    assert "provision clients=['10.77.0.29'] drop={'laptop'}" in m.log
    assert I.load(inv_path).clients["laptop"].address == "10.77.0.29"


def test_a_bad_address_for_a_known_client_is_refused_before_anything(inv_path):
    m = Machines()
    with pytest.raises(client_flows.FlowError, match="--address: '10.0.0.0/0' is every address") as e:
        m.run(inv_path, client_flows.ClientRequest("laptop", address="10.0.0.0/0"))
    assert e.value.code == 2 and m.log == []


# ------------------------------------------------------------------ update-clients

def test_update_clients_recreates_only_builders_whose_nodes_changed_and_skips_the_unreachable(inv_path):
    inv = I.load(inv_path)
    for name in ("laptop",):
        pki.ensure_leaf(pki.client_paths(inv.pki_dir, name), pki.load_ca(inv.pki_dir), name, 30, 1)
    platforms = {"build1": "linux/amd64", "build2": "linux/amd64"}
    current = clients.wanted(inv, inv.clients["laptop"], platforms)[2]
    seen = []

    def preflight(c):
        class Sess:
            def close(s):
                pass
        return Sess(), {"state": current}

    def bootstrap(inv, client, sess, facts, platforms, rep, res):
        seen.append(client.name)

    results = client_flows.update_clients(inv_path, True, QUIET, preflight, lambda inv: platforms, bootstrap)
    assert [(s["name"], s["status"]) for s in results[0].steps] == [("builder buildkit-ops", "ok")] and not seen
    inv_path.write_text(inv_path.read_text().replace("address: 10.77.0.21", "address: 10.77.0.21\n          home: build2"))
    results = client_flows.update_clients(inv_path, True, QUIET, preflight, lambda inv: platforms, bootstrap)
    assert results[0].steps[0]["status"] == "would change" and "nodes: build2, build1" in results[0].steps[0]["detail"]
    client_flows.update_clients(inv_path, False, QUIET, preflight, lambda inv: platforms, bootstrap)
    assert seen == ["laptop"]

    def unreachable(c):
        raise clients.ClientError("laptop: unreachable")
    [r] = client_flows.update_clients(inv_path, False, QUIET, unreachable, lambda inv: platforms, bootstrap)
    assert r.unreachable and r.error == "laptop: unreachable"


def test_pinning_a_known_client_records_its_home_and_sets_up_its_builder(inv_path):
    m = Machines()
    m.run(inv_path, client_flows.ClientRequest("laptop", home="build2"))
    assert I.load(inv_path).clients["laptop"].home == "build2"
    assert m.log[-2:] == ["bootstrap laptop", "close"]
    with pytest.raises(client_flows.FlowError, match="'build9' is not a build host"):
        m.run(inv_path, client_flows.ClientRequest("laptop", home="build9"))


def test_the_doctor_says_a_home_host_that_does_not_answer_is_not_skipped_and_how_to_move(inv_path):
    inv = I.load(inv_path)
    issue_servers(inv)
    found = looked(inv)
    found["tcp0"] = "blocked"   # build1, laptop's home
    [b1, b2] = doctor.diagnose(inv, inv.clients["laptop"], found, dt.datetime.now(dt.timezone.utc))
    assert "It is laptop's home host; its failover proxy sends its builds to the next host" in b1[2]
    assert b2[1] == "ok"
    laptop = dataclasses.replace(inv.clients["laptop"], failover="none")
    [b1, b2] = doctor.diagnose(inv, laptop, found, dt.datetime.now(dt.timezone.utc))
    assert "It is laptop's home host: buildx sends its builds here and does not fall back" in b1[2]
    assert "Set `failover: proxy` on laptop" in b1[2] and "`invoke add-client laptop --home build2`" in b1[2]
