"""The operator's records of clients: a revoked certificate leaves the client's folder for revoked/ with its key
deleted, is listed with its serial, and each client's row says what to do about its certificate."""
from __future__ import annotations

import yaml

from buildkit_ops import inventory as I
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import client_records


def test_a_revocation_is_recorded_and_the_key_is_gone(inv_path):
    inv = I.load(inv_path)
    leaf = pki.client_paths(inv.pki_dir, "laptop")
    pki.ensure_leaf(leaf, pki.load_ca(inv.pki_dir), "laptop", 30, 1)
    serial = format(pki.load_cert(leaf.crt).serial_number, "x")
    [entry] = client_records.revoke(inv, "laptop")
    assert entry["serial"] == serial and entry["name"] == "laptop"
    assert not leaf.key.exists() and not leaf.crt.exists()
    assert (inv.pki_dir / "revoked" / f"laptop-{serial}.crt").exists()
    assert yaml.safe_load(client_records.revoked_path(inv).read_text()) == [entry]
    assert oct(client_records.revoked_path(inv).stat().st_mode)[-3:] == "600"
    assert client_records.revoke(inv, "laptop") == []   # nothing left to revoke


def serial(leaf: pki.Leaf) -> str:
    return format(pki.load_cert(leaf.crt).serial_number, "x")


def issued_then_rotated(inv) -> tuple[pki.Leaf, str]:
    """laptop's certificate, then a reissue as `rotate-certs --client laptop` makes; the first one's serial."""
    ca = pki.load_ca(inv.pki_dir)
    leaf = pki.client_paths(inv.pki_dir, "laptop")
    pki.ensure_leaf(leaf, ca, "laptop", 30, 1)
    first = serial(leaf)
    pki.ensure_leaf(leaf, ca, "laptop", 30, 1, force=True)
    return leaf, first


def test_removal_revokes_every_certificate_ever_issued_to_the_client(inv_path):
    inv = I.load(inv_path)
    leaf, first = issued_then_rotated(inv)
    second = serial(leaf)
    assert client_records.live_certificates(inv) == {"laptop": 2}
    [row] = client_records.client_rows(inv)
    assert row["live_certs"] == 2
    entries = client_records.revoke(inv, "laptop")
    assert sorted(e["serial"] for e in entries) == sorted([first, second])
    assert client_records.live_certificates(inv) == {}
    [_, removed] = client_records.client_rows(inv)
    assert removed["status"].endswith("(2 certificates on the CRL)")
    assert not leaf.crt.parent.exists()          # nothing of it is left in its folder, nor the folder
    assert (inv.pki_dir / "revoked" / f"laptop-{second}.crt").exists()


def test_a_certificate_from_before_the_ledger_is_recorded_before_it_is_replaced(inv_path):
    inv = I.load(inv_path)
    ca = pki.load_ca(inv.pki_dir)
    leaf = pki.client_paths(inv.pki_dir, "laptop")
    crt, key = pki.issue(ca, "laptop", 30)         # written by an older version: in no ledger
    leaf.crt.parent.mkdir(parents=True)
    leaf.crt.write_bytes(crt)
    leaf.key.write_bytes(key)
    old = serial(leaf)
    pki.ensure_leaf(leaf, ca, "laptop", 30, 1, force=True)
    assert sorted(e["serial"] for e in client_records.revoke(inv, "laptop")) == sorted([old, serial_of(inv, old)])


def serial_of(inv, other: str) -> str:
    """The serial in revoked/ that is not `other` (the certificate the removal moved there)."""
    [moved] = [p.name.split("-")[1][:-4] for p in (inv.pki_dir / "revoked").glob("laptop-*.crt")]
    assert moved != other
    return moved


def test_revoke_old_keeps_only_the_current_certificate(inv_path):
    inv = I.load(inv_path)
    leaf, first = issued_then_rotated(inv)
    [entry] = client_records.revoke(inv, "laptop", keep_current=True)
    assert entry["serial"] == first and leaf.crt.exists() and leaf.key.exists()
    assert client_records.live_certificates(inv) == {"laptop": 1}
    assert client_records.revoke(inv, "laptop", keep_current=True) == []


def test_each_row_says_what_to_do_about_the_certificate(inv_path, tmp_path):
    inv = I.load(inv_path)
    [row] = client_records.client_rows(inv)
    assert row["status"] == "no certificate (run add-client)" and row["home"] in inv.hosts
    leaf = pki.client_paths(inv.pki_dir, "laptop")
    pki.ensure_leaf(leaf, pki.load_ca(inv.pki_dir), "laptop", 10, 1)
    [row] = client_records.client_rows(inv)
    assert row["status"].startswith("expires in 9 days") or row["status"].startswith("expires in 10 days")
    other = pki.create_ca(tmp_path / "other", 30)
    crt, key = pki.issue(other, "laptop", 30)
    leaf.crt.write_bytes(crt)
    [row] = client_records.client_rows(inv)
    assert row["status"] == "certificate from another CA (run add-client)"


def test_every_change_of_the_state_moves_its_generation_on_and_reading_it_does_not(inv_path):
    from buildkit_ops.pki import generation
    inv = I.load(inv_path)
    ca = pki.load_ca(inv.pki_dir)
    leaf = pki.client_paths(inv.pki_dir, "laptop")
    g0 = generation.current(inv.pki_dir)
    pki.ensure_leaf(leaf, ca, "laptop", 30, 1)
    g1 = generation.current(inv.pki_dir)
    client_records.client_rows(inv)
    pki.ensure_leaf(leaf, ca, "laptop", 30, 1)          # nothing to issue
    assert generation.current(inv.pki_dir) == g1 > g0
    client_records.revoke(inv, "laptop")
    assert generation.current(inv.pki_dir) > g1
