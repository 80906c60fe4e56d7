"""The CI trusts' intermediates on the operator machine: one per trust, made once, kept while the trust is; a trust
gone (or a new CA) retires it onto the CRL; an operator CA of before (path length 0) asks for a CA rotation."""
from __future__ import annotations

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from oidc_helpers import root

from buildkit_ops.pki import certs, ci_intermediates, crl


def crls(pem: bytes) -> list[x509.CertificateRevocationList]:
    marker = b"-----BEGIN X509 CRL-----"
    return [x509.load_pem_x509_crl(marker + part) for part in pem.split(marker)[1:]]


def test_a_trusts_intermediate_is_made_once_and_kept(tmp_path):
    certs.create_ca(tmp_path, 30)
    first = ci_intermediates.current(tmp_path, ["github"])
    again = ci_intermediates.current(tmp_path, ["github"])
    assert first["github"].serial == again["github"].serial
    assert oct((tmp_path / "ci-trusts" / "github" / "ca.key").stat().st_mode & 0o777) == "0o600"
    cn = first["github"].ca.cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    assert cn == f"CI issuer github {first['github'].serial}"   # (the gateway logs it: issuer=SERIAL)


def test_a_trust_gone_retires_its_intermediate_onto_the_crl_and_its_key_is_deleted(tmp_path):
    ca = certs.create_ca(tmp_path, 30)
    made = ci_intermediates.current(tmp_path, ["github", "gitlab"])
    before = crl.current(tmp_path, [])
    assert len(crls(before.pem)) == 3     # the CA's, and each intermediate's own (empty)
    ci_intermediates.current(tmp_path, ["gitlab"])
    assert not (tmp_path / "ci-trusts" / "github").exists()
    [entry] = yaml.safe_load((tmp_path / "revoked.yml").read_text())
    assert (entry["serial"], entry["issuer"]) == (made["github"].serial, ca.cert.subject.rfc4514_string())
    revoked = yaml.safe_load((tmp_path / "revoked.yml").read_text())
    after = crl.current(tmp_path, revoked)
    lists = crls(after.pem)
    # the CA's (naming the intermediate), gitlab's own, and github's last (signed before its key went: a job's
    # chain is then found whole, and refused as revoked)
    assert [c.issuer for c in lists] == [ca.cert.subject, made["gitlab"].ca.cert.subject,
                                         made["github"].ca.cert.subject]
    theirs = lists[0].get_revoked_certificate_by_serial_number(int(made["github"].serial, 16))
    assert theirs is not None
    assert list((tmp_path / "ci-trusts-retired").glob("github-*.crt"))


def test_renew_retires_every_intermediate_and_the_next_are_new(tmp_path):
    certs.create_ca(tmp_path, 30)
    old = ci_intermediates.current(tmp_path, ["github"])["github"].serial
    assert ci_intermediates.renew(tmp_path) == ["github"]
    new = ci_intermediates.current(tmp_path, ["github"])["github"].serial
    assert new != old and [e["serial"] for e in yaml.safe_load((tmp_path / "revoked.yml").read_text())] == [old]


def test_an_operator_ca_of_path_length_0_asks_for_a_ca_rotation_and_nothing_changes(tmp_path):
    old = root(0)
    (tmp_path / "ca.crt").write_bytes(old.pem)
    (tmp_path / "ca.key").write_bytes(old.key.private_bytes(serialization.Encoding.PEM,
                                                            serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))
    with pytest.raises(ci_intermediates.NoRoomBelowCA) as e:
        ci_intermediates.current(tmp_path, ["github"])
    assert "rotate-certs --ca" in str(e.value) and "path length 0" in str(e.value)
    assert not list((tmp_path / "ci-trusts").glob("*/ca.key"))


def test_check_mode_makes_nothing(tmp_path):
    certs.create_ca(tmp_path, 30)
    assert ci_intermediates.current(tmp_path, ["github"], write=False) == {}
    assert not (tmp_path / "ci-trusts").exists()
