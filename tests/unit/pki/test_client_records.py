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
    entry = client_records.record_revocation(inv, "laptop")
    assert entry is not None and entry["serial"] == serial and entry["name"] == "laptop"
    assert not leaf.key.exists() and not leaf.crt.exists()
    assert (inv.pki_dir / "revoked" / f"laptop-{serial}.crt").exists()
    assert yaml.safe_load(client_records.revoked_path(inv).read_text()) == [entry]
    assert oct(client_records.revoked_path(inv).stat().st_mode)[-3:] == "600"
    assert client_records.record_revocation(inv, "laptop") is None   # nothing left to revoke


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
