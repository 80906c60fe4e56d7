"""doctor: the ladder, a pure function of what the client machine shows; the first rung that fails is the finding."""
from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from buildkit_ops import inventory as I
from buildkit_ops.flows import doctor
from buildkit_ops.pki import certs as pki


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
