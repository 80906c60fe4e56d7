"""The operator's records of clients: which certificates were revoked (`pki_dir/revoked.yml`, from which the CRL
that the gateways enforce is made: pki/crl.py), and each client's row for list-clients and status (address,
home host, certificate expiry and status)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml

from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.fleet import placement
from buildkit_ops.inventory import Inventory
from buildkit_ops.inventory.model import DEFAULT_TENANT
from buildkit_ops.pki import certs as pki


def revoked_path(inv: Inventory) -> Path:
    return inv.pki_dir / "revoked.yml"


def revoked(inv: Inventory) -> list[dict[str, Any]]:
    p = revoked_path(inv)
    return yaml.safe_load(p.read_text()) or [] if p.exists() else []


def record_revocation(inv: Inventory, name: str) -> dict[str, Any] | None:
    leaf = pki.client_paths(inv.pki_dir, name)
    if not leaf.crt.exists():
        return None
    cert = pki.load_cert(leaf.crt)
    entry = {"name": name, "serial": format(cert.serial_number, "x"),
             "not_after": cert.not_valid_after_utc.isoformat(),
             "issuer": cert.issuer.rfc4514_string(),
             "revoked_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()}
    entries = revoked(inv) + [entry]
    atomic_write(revoked_path(inv), yaml.safe_dump(entries, sort_keys=False).encode(), 0o600)
    leaf.key.unlink(missing_ok=True)
    dest = inv.pki_dir / "revoked" / f"{name}-{entry['serial']}.crt"
    dest.parent.mkdir(parents=True, exist_ok=True)
    leaf.crt.replace(dest)
    return entry


def client_rows(inv: Inventory) -> list[dict[str, Any]]:
    rows = []
    now = dt.datetime.now(dt.timezone.utc)
    ca = pki.load_ca(inv.pki_dir)
    homes = placement.client_homes(inv)
    for c in inv.clients.values():
        leaf = pki.client_paths(inv.pki_dir, c.name)
        row = {"name": c.name, "tenant": c.tenant or DEFAULT_TENANT, "address": c.address,
               "connection": c.connection, "builder": c.builder,
               "home": homes.get(c.name), "pinned": c.home is not None,
               "cert_expires": None, "status": "no certificate (run add-client)"}
        if leaf.crt.exists():
            cert = pki.load_cert(leaf.crt)
            left = pki.days_left(cert, now)
            row["cert_expires"] = cert.not_valid_after_utc.date().isoformat()
            if ca is None or not pki.signed_by(cert, ca):
                row["status"] = "certificate from another CA (run add-client)"
            elif left < 0:
                row["status"] = "EXPIRED"
            elif left < inv.cert_renew_days:
                row["status"] = f"expires in {left} days (run add-client or rotate-certs)"
            else:
                row["status"] = "ok"
        rows.append(row)
    for r in revoked(inv):
        rows.append({"name": r["name"], "tenant": None, "address": "-", "connection": "-", "builder": "-",
                     "home": None,
                     "pinned": False,
                     "cert_expires": r["not_after"][:10],
                     "status": f"revoked {r['revoked_at'][:10]} (on the CRL)"})
    return rows
