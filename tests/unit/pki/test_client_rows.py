"""list-clients' rows, whole: each client's certificate status (none, ok, about to expire, expired, another CA's),
its tenant, home and live certificates, and one row per removal with how many certificates it revoked."""
from __future__ import annotations

import datetime as dt

import yaml

from buildkit_ops import inventory as I
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import client_records


def test_each_clients_row_says_what_to_do_about_its_certificate(inv_path, tmp_path):
    data = yaml.safe_load(inv_path.read_text())
    clients = data["all"]["children"]["clients"]["hosts"]
    for name, addr in (("soon", "10.0.0.31"), ("old", "10.0.0.32"), ("alien", "10.0.0.33"), ("none", "10.0.0.34")):
        clients[name] = {"address": addr}
    clients["soon"]["home"] = "build1"
    inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
    inv = I.load(inv_path)
    ca = pki.load_ca(inv.pki_dir)
    pki.ensure_leaf(pki.client_paths(inv.pki_dir, "laptop"), ca, "laptop", 825, 30)
    pki.ensure_leaf(pki.client_paths(inv.pki_dir, "soon"), ca, "soon", 10, 1)            # within cert_renew_days
    pki.ensure_leaf(pki.client_paths(inv.pki_dir, "old"), ca, "old", 10, 1)
    other, _ = pki.ensure_ca(tmp_path / "other-ca", 30)
    pki.ensure_leaf(pki.client_paths(inv.pki_dir, "alien"), other, "alien", 30, 1)
    rows = {r["name"]: r for r in client_records.client_rows(inv, now=dt.datetime.now(dt.timezone.utc))}
    assert {n: r["status"] for n, r in rows.items()} == {
        "laptop": "ok", "soon": "expires in 9 days (run add-client or rotate-certs)", "old": rows["old"]["status"],
        "alien": "certificate from another CA (run add-client)", "none": "no certificate (run add-client)"}
    later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=20)
    assert {r["name"]: r["status"] for r in client_records.client_rows(inv, now=later)}["old"] == "EXPIRED"
    r = rows["soon"]
    assert (r["tenant"], r["address"], r["connection"], r["builder"], r["home"], r["pinned"], r["live_certs"]) == (
        "default", "10.0.0.31", "ssh", "buildkit-ops", "build1", True, 1)
    assert r["cert_expires"] == pki.load_cert(pki.client_paths(inv.pki_dir, "soon").crt).not_valid_after_utc \
        .date().isoformat()
    assert (rows["none"]["cert_expires"], rows["none"]["live_certs"], rows["none"]["pinned"]) == (None, 0, False)
    client_records.revoke(inv, "laptop")
    [removal] = [r for r in client_records.client_rows(inv) if r["status"].startswith("revoked")]
    assert removal == {"name": "laptop", "tenant": None, "address": "-", "connection": "-", "builder": "-",
                       "home": None, "pinned": False, "live_certs": 0, "cert_expires": rows["laptop"]["cert_expires"],
                       "status": f"revoked {dt.date.today().isoformat()} (1 certificate on the CRL)"}
    # list-clients without --all: the inventory's clients alone, however many removals the CRL keeps
    assert [r["name"] for r in client_records.client_rows(inv, removed=False)] == list(inv.clients)
