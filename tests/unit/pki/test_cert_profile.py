"""The certificates' profile, exactly as a TLS stack checks it: the CA signs certificates and CRLs only and no CA
below it; a leaf is no CA, signs with its key only (ECDSA), serves or is a client (never both), names its
issuer's key; every one is backdated five minutes (clocks a little behind still accept it) and says who made it;
a leaf never outlives its CA."""
from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from buildkit_ops.pki import certs

NO_USE = dict(content_commitment=False, key_encipherment=False, data_encipherment=False, key_agreement=False,
              encipher_only=False, decipher_only=False)


def ext(cert, kind):
    e = cert.extensions.get_extension_for_class(kind)
    return e.value, e.critical


def test_the_ca_signs_certificates_and_crls_only_and_one_ca_at_most_below_it(tmp_path):
    before = dt.datetime.now(dt.timezone.utc)
    ca = certs.create_ca(tmp_path, 10)
    c = ca.cert
    assert c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "buildkit-ops"
    assert c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "buildkit-ops CA"
    assert ext(c, x509.BasicConstraints) == (x509.BasicConstraints(ca=True, path_length=1), True)
    assert ext(c, x509.KeyUsage) == (x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True,
                                                   **NO_USE), True)
    assert ext(c, x509.SubjectKeyIdentifier)[1] is False
    assert dt.timedelta(minutes=4) < before - c.not_valid_before_utc < dt.timedelta(minutes=6)
    assert dt.timedelta(days=9, hours=23) < c.not_valid_after_utc - before <= dt.timedelta(days=10)


def test_a_leaf_is_a_server_or_a_client_never_a_ca_and_never_outlives_its_ca(tmp_path):
    ca = certs.create_ca(tmp_path, 10)
    before = dt.datetime.now(dt.timezone.utc)
    for server_names, usage in ((["build1", "10.0.0.11"], ExtendedKeyUsageOID.SERVER_AUTH),
                                (None, ExtendedKeyUsageOID.CLIENT_AUTH)):
        pem, _key = certs.issue(ca, "leaf", 825, server_names=server_names)
        c = x509.load_pem_x509_certificate(pem)
        assert c.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "buildkit-ops"
        assert c.issuer == ca.cert.subject
        assert ext(c, x509.BasicConstraints) == (x509.BasicConstraints(ca=False, path_length=None), True)
        assert ext(c, x509.KeyUsage) == (x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                                       **NO_USE), True)
        assert ext(c, x509.ExtendedKeyUsage) == (x509.ExtendedKeyUsage([usage]), False)
        aki, critical = ext(c, x509.AuthorityKeyIdentifier)
        assert aki.key_identifier == ext(ca.cert, x509.SubjectKeyIdentifier)[0].digest and critical is False
        assert ext(c, x509.SubjectKeyIdentifier)[1] is False
        assert c.not_valid_after_utc == ca.cert.not_valid_after_utc                  # capped at the CA's
        assert dt.timedelta(minutes=4) < before - c.not_valid_before_utc < dt.timedelta(minutes=6)
        if server_names:
            assert ext(c, x509.SubjectAlternativeName)[1] is False
            assert certs.cert_sans(c) == ["10.0.0.11", "build1"]
        else:
            assert certs.cert_sans(c) == []
