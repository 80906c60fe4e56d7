"""A host's server certificate on the operator machine: issued once, named for every name of the host, reissued
when the names change or on rotation, and nothing written in check mode."""
from __future__ import annotations

import dataclasses

from buildkit_ops import inventory as I
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import server


def names(inv, host) -> list[str]:
    return pki.cert_sans(pki.load_cert(pki.server_paths(inv.pki_dir, host).crt))


def test_a_server_certificate_is_issued_once_and_reissued_when_the_names_change(inv_path):
    inv = I.load(inv_path)
    h = inv.hosts["build1"]
    [ca, cert] = server.ensure(inv, h, check=False)
    assert not ca.changed and cert.changed and "issued (missing)" in cert.detail
    assert sorted(names(inv, "build1")) == sorted(h.sans)
    [_, again] = server.ensure(inv, h, check=False)
    assert not again.changed
    renamed = dataclasses.replace(h, names=[*h.names, "build1.example.com"])
    [_, check] = server.ensure(inv, renamed, check=True)
    assert check.changed and check.detail.startswith("would issue") and "build1.example.com" not in names(inv, "build1")
    [_, done] = server.ensure(inv, renamed, check=False)
    assert done.changed and "build1.example.com" in names(inv, "build1")
    [_, rotated] = server.ensure(inv, renamed, check=False, force=True)
    assert rotated.changed and "rotation" in rotated.detail


def test_check_mode_without_a_ca_writes_nothing(inv_path, tmp_path):
    inv = dataclasses.replace(I.load(inv_path), pki_dir=tmp_path / "empty")
    steps = server.ensure(inv, inv.hosts["build1"], check=True)
    assert [s.changed for s in steps] == [True, True] and not (tmp_path / "empty").exists()


def test_without_a_ca_one_is_created_and_each_step_says_what_it_did(inv_path, tmp_path):
    inv = dataclasses.replace(I.load(inv_path), pki_dir=tmp_path / "fresh-pki")
    h = inv.hosts["build1"]
    [ca, cert] = server.ensure(inv, h, check=False)
    assert (ca.role, ca.name, ca.changed) == ("pki", "CA", True)
    assert ca.detail == f"created {inv.pki_dir}/ca.crt (key 0600, stays here)"
    assert (inv.pki_dir / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (cert.role, cert.name) == ("pki", "server certificate")
    assert cert.detail == f"issued (missing) for {', '.join(h.sans)}"
    [ca, cert] = server.ensure(inv, h, check=False)
    assert (ca.changed, ca.detail) == (False, f"{inv.pki_dir}/ca.crt")
    assert (cert.changed, cert.detail) == (False, f"valid for {', '.join(h.sans)}")
    [_, cert] = server.ensure(inv, h, check=True, force=True)
    assert cert.detail == f"would issue (rotation) for {', '.join(h.sans)}"


def test_a_check_without_a_ca_says_what_would_be_created(inv_path, tmp_path):
    inv = dataclasses.replace(I.load(inv_path), pki_dir=tmp_path / "empty")
    h = inv.hosts["build1"]
    [ca, cert] = server.ensure(inv, h, check=True)
    assert ca.detail == f"would create {inv.pki_dir}/ca.crt and ca.key (0600)"
    assert cert.detail == f"would issue for {', '.join(h.sans)}"


def test_the_operators_certificate_is_a_client_certificate_of_its_reserved_name_issued_once(inv_path):
    from cryptography import x509
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    inv = I.load(inv_path)
    ca, _ = pki.ensure_ca(inv.pki_dir, inv.ca_days)
    leaf = server.operator_cert(inv, ca)
    assert leaf.crt == inv.pki_dir / "operator" / "client.crt" and leaf.key == inv.pki_dir / "operator" / "client.key"
    cert = pki.load_cert(leaf.crt)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "buildkit-ops-operator"
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert cert.issuer == ca.cert.subject
    first = leaf.crt.read_bytes()
    assert server.operator_cert(inv, ca).crt.read_bytes() == first          # kept: issued once
    assert (leaf.key.stat().st_mode & 0o777) == 0o600
