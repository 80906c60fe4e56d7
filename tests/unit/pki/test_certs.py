"""PKI unit tests: the CA, server and client leaves, renewal decisions."""
from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from buildkit_ops.pki import certs as pki


def test_ca_is_created_once_with_a_private_key_mode_0600(tmp_path):
    ca, created = pki.ensure_ca(tmp_path, 3650)
    assert created
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    bc = ca.cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    again, created = pki.ensure_ca(tmp_path, 3650)
    assert not created and again.cert.serial_number == ca.cert.serial_number


def test_server_leaf_has_sans_and_server_auth_only(tmp_path):
    ca, _ = pki.ensure_ca(tmp_path, 3650)
    leaf = pki.server_paths(tmp_path, "build1")
    assert pki.ensure_leaf(leaf, ca, "build1", 825, 30, ["10.0.0.11", "build1.lab"]) == "missing"
    cert = x509.load_pem_x509_certificate(leaf.crt.read_bytes())
    assert sorted(pki.cert_sans(cert)) == ["10.0.0.11", "build1.lab"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert stat.S_IMODE(leaf.key.stat().st_mode) == 0o600
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(days=825, minutes=5)
    cert.verify_directly_issued_by(ca.cert)


def test_client_leaf_is_client_auth_only_with_cn(tmp_path):
    ca, _ = pki.ensure_ca(tmp_path, 3650)
    leaf = pki.client_paths(tmp_path, "laptop")
    pki.ensure_leaf(leaf, ca, "laptop", 825, 30)
    cert = x509.load_pem_x509_certificate(leaf.crt.read_bytes())
    assert cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "laptop"
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH]


def test_leaf_is_reissued_only_when_needed(tmp_path):
    ca, _ = pki.ensure_ca(tmp_path, 3650)
    leaf = pki.server_paths(tmp_path, "build1")
    pki.ensure_leaf(leaf, ca, "build1", 825, 30, ["10.0.0.11"])
    assert pki.ensure_leaf(leaf, ca, "build1", 825, 30, ["10.0.0.11"]) is None
    assert pki.ensure_leaf(leaf, ca, "build1", 825, 30, ["10.0.0.11", "b.lab"]).startswith("names changed")
    assert pki.ensure_leaf(leaf, ca, "build1", 825, 900, ["10.0.0.11", "b.lab"]).startswith("expires in")
    other, _ = pki.ensure_ca(tmp_path / "other", 3650)
    assert pki.ensure_leaf(leaf, other, "build1", 825, 30, ["10.0.0.11", "b.lab"]) == "signed by another CA"


def test_a_certificate_whose_key_file_belongs_to_another_is_reissued(tmp_path):
    ca, _ = pki.ensure_ca(tmp_path, 30)
    a = pki.Leaf(tmp_path / "a.crt", tmp_path / "a.key")
    b = pki.Leaf(tmp_path / "b.crt", tmp_path / "b.key")
    pki.ensure_leaf(a, ca, "a", 30, 1)
    pki.ensure_leaf(b, ca, "b", 30, 1)
    a.key.write_bytes(b.key.read_bytes())  # what two writers racing on one leaf could leave behind
    assert pki.reissue_reason(a.crt, a.key, ca, 1) == "its key does not match it"
    assert pki.ensure_leaf(a, ca, "a", 30, 1) == "its key does not match it"
    assert pki.reissue_reason(a.crt, a.key, ca, 1) is None


def test_a_key_found_readable_by_others_is_tightened_and_the_folders_are_private(tmp_path):
    import stat
    ca, _ = pki.ensure_ca(tmp_path, 30)
    (tmp_path / "clients").mkdir(mode=0o755)
    os.chmod(tmp_path, 0o755)
    leaf = pki.client_paths(tmp_path, "laptop")
    pki.ensure_leaf(leaf, ca, "laptop", 30, 1)
    os.chmod(leaf.key, 0o644)
    assert pki.ensure_leaf(leaf, ca, "laptop", 30, 1) is None          # nothing to reissue...
    assert stat.S_IMODE(leaf.key.stat().st_mode) == 0o600              # ...but the key is private again
    for d in (tmp_path, tmp_path / "clients", leaf.key.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_a_ca_without_its_key_is_never_replaced_and_signs_nothing(tmp_path):
    """The key kept offline (or lost): whoever would sign stops, nothing is created over ca.crt; what only reads
    the certificate still works."""
    ca = pki.create_ca(tmp_path, 30)
    (tmp_path / "ca.key").rename(tmp_path / "ca.key.offline")
    before = (tmp_path / "ca.crt").read_bytes()
    with pytest.raises(pki.CAKeyMissing, match="the CA's key is missing .* nothing was changed"):
        pki.ensure_ca(tmp_path, 30)
    with pytest.raises(pki.CAKeyMissing):
        pki.signing_ca(tmp_path, "client")
    assert (tmp_path / "ca.crt").read_bytes() == before and not (tmp_path / "ca.key").exists()
    assert pki.load_ca_cert(tmp_path) == ca.cert
    (tmp_path / "ca.key.offline").rename(tmp_path / "ca.key")
    back, created = pki.ensure_ca(tmp_path, 30)
    assert back.cert == ca.cert and not created
