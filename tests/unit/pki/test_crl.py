"""The CRL the gateways enforce: made from the revoked records, one per CA hosts trust, signed again only when
what it says changed (an unchanged inventory uploads nothing), never stale before the CA itself."""
from __future__ import annotations

import datetime as dt

from cryptography import x509

from buildkit_ops.pki import certs, crl


def revoked(ca: certs.CA, serial: str) -> dict[str, str]:
    return {"name": "laptop2", "serial": serial, "issuer": ca.cert.subject.rfc4514_string(),
            "revoked_at": "2026-12-01T10:00:00+00:00"}


def test_a_crl_lists_the_revoked_serials_and_is_made_again_only_when_they_change(tmp_path):
    ca, _ = certs.ensure_ca(tmp_path, 3650)
    first = crl.current(tmp_path, [])
    assert first is not None and first.number == 1 and crl.number_of(first.pem) == 1
    assert crl.current(tmp_path, []) == first                       # the same bytes: nothing to upload
    second = crl.current(tmp_path, [revoked(ca, "abc123")])
    assert second is not None and second.number == 2 and second.pem != first.pem
    parsed = x509.load_pem_x509_crl(second.pem)
    assert [r.serial_number for r in parsed] == [0xABC123]
    assert parsed.is_signature_valid(ca.cert.public_key())
    assert parsed.next_update_utc >= ca.cert.not_valid_after_utc - dt.timedelta(seconds=1)


def test_during_a_ca_rotation_each_trusted_ca_has_its_crl(tmp_path):
    ca, _ = certs.ensure_ca(tmp_path, 3650)
    nxt, _ = certs.ensure_ca(tmp_path / "next", 3650)
    made = crl.current(tmp_path, [revoked(nxt, "ff")])
    assert made is not None
    crls = made.pem.split(b"-----END X509 CRL-----")[:-1]
    assert len(crls) == 2
    issuers = [x509.load_pem_x509_crl(c + b"-----END X509 CRL-----\n").issuer for c in crls]
    assert issuers == [ca.cert.subject, nxt.cert.subject]


def test_check_mode_signs_and_writes_nothing(tmp_path):
    certs.ensure_ca(tmp_path, 3650)
    planned = crl.current(tmp_path, [], write=False)
    assert planned is not None and planned.pem == b"(CRL number 1 to be signed)\n"
    assert not (tmp_path / "crl.pem").exists() and not (tmp_path / "crl.yml").exists()
    made = crl.current(tmp_path, [])
    assert crl.current(tmp_path, [], write=False) == made        # unchanged: the real one, nothing to sign


def test_without_a_ca_there_is_no_crl(tmp_path):
    assert crl.current(tmp_path, []) is None and crl.number_of(b"not a crl") is None


def test_hosts_prepared_at_once_get_one_crl(tmp_path):
    """A run prepares its hosts in parallel: every one gets the same new CRL, the one the operator keeps."""
    from concurrent.futures import ThreadPoolExecutor
    ca, _ = certs.ensure_ca(tmp_path, 3650)
    crl.current(tmp_path, [])
    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(lambda _: crl.current(tmp_path, [revoked(ca, "abc")]), range(8)))
    assert len({m.pem for m in made}) == 1 and made[0].number == 2
    assert (tmp_path / "crl.pem").read_bytes() == made[0].pem


def test_a_crl_is_judged_against_this_pki_only_when_one_of_its_cas_signed_it(tmp_path):
    """A host's CRL newer than the operator's is `ahead` (this state is stale) only when this PKI's CA (the CA,
    the next, a retired one) signed it; another deployment's CRL says nothing of this state's age."""
    ca, _ = certs.ensure_ca(tmp_path / "mine", 3650)
    mine = crl.current(tmp_path / "mine", [])
    other_ca, _ = certs.ensure_ca(tmp_path / "other", 3650)
    theirs = crl.current(tmp_path / "other", [revoked(other_ca, "ab")])
    own = crl.own_key_ids(tmp_path / "mine")
    assert crl.issuer_key_id(mine.pem) in own and crl.issuer_key_id(theirs.pem) not in own
    assert crl.standing(9, 5) == "ahead" and crl.standing(5, 9) == "behind" and crl.standing(5, 5) == "same"
    assert crl.standing(9, None) == "ahead" and crl.standing(None, 5) == "behind"
    assert crl.standing(9, 5, ours=False) == "behind" and crl.standing(9, None, ours=False) == "behind"
    (tmp_path / "mine" / "retired").mkdir()
    (tmp_path / "mine" / "ca.crt").rename(tmp_path / "mine" / "retired" / "ca-1.crt")
    assert crl.issuer_key_id(mine.pem) in crl.own_key_ids(tmp_path / "mine")   # a retired CA is still ours
