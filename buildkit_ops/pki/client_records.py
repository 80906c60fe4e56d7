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
from buildkit_ops.pki import generation, ledger


def revoked_path(inv: Inventory) -> Path:
    return inv.pki_dir / "revoked.yml"


def revoked(inv: Inventory) -> list[dict[str, Any]]:
    p = revoked_path(inv)
    return yaml.safe_load(p.read_text()) or [] if p.exists() else []


def revoke(inv: Inventory, name: str, keep_current: bool = False) -> list[dict[str, Any]]:
    """Put on the CRL every unexpired certificate ever issued to `name` (the ledger's, and the one in its folder,
    recorded first if it predates the ledger), and return what was added. remove-client: all of them, and its
    folder emptied (the key deleted, the certificate kept under revoked/). keep_current (a reissue for suspected
    compromise): every one but the certificate in its folder now."""
    leaf = pki.client_paths(inv.pki_dir, name)
    current = pki.load_cert(leaf.crt) if leaf.crt.exists() else None
    if current is not None:
        ledger.record(inv.pki_dir, name, current)
    keep = format(current.serial_number, "x") if keep_current and current is not None else None
    done = {(r["issuer"], r["serial"]) for r in revoked(inv)}
    now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    entries = [{"name": name, "serial": i.serial, "not_after": i.not_after, "issuer": i.issuer,
                "revoked_at": now.isoformat()}
               for i in ledger.unexpired(inv.pki_dir, name, now)
               if (i.issuer, i.serial) not in done and i.serial != keep]
    if entries:
        atomic_write(revoked_path(inv), yaml.safe_dump(revoked(inv) + entries, sort_keys=False).encode(), 0o600)
        generation.bump(inv.pki_dir)
    if current is not None and not keep_current:
        leaf.key.unlink(missing_ok=True)
        dest = inv.pki_dir / "revoked" / f"{name}-{format(current.serial_number, 'x')}.crt"
        dest.parent.mkdir(parents=True, exist_ok=True)
        leaf.crt.replace(dest)
    if not keep_current:
        try:
            leaf.crt.parent.rmdir()     # (nothing of a removed client is left in its folder: the folder goes too)
        except OSError:
            pass                        # (not there, or something else was put there: kept)
    return entries


def live_certificates(inv: Inventory) -> dict[str, int]:
    """How many certificates of each name a gateway would accept now: issued, unexpired and not on the CRL (a
    reissue leaves the one it replaced live until it expires, unless `rotate-certs --revoke-old`)."""
    done = {(r["issuer"], r["serial"]) for r in revoked(inv)}
    now = dt.datetime.now(dt.timezone.utc)
    live: dict[str, int] = {}
    for i in ledger.read(inv.pki_dir):
        if not i.expired(now) and (i.issuer, i.serial) not in done:
            live[i.name] = live.get(i.name, 0) + 1
    return live


def client_rows(inv: Inventory, now: dt.datetime | None = None, removed: bool = True) -> list[dict[str, Any]]:
    """list-clients' rows: each client's, then (`removed`) one per removal. `now`: the clock certificates are
    judged by."""
    rows = []
    now = now or dt.datetime.now(dt.timezone.utc)
    ca = pki.load_ca_cert(inv.pki_dir)
    homes = placement.client_homes(inv)
    live = live_certificates(inv)
    for c in inv.clients.values():
        leaf = pki.client_paths(inv.pki_dir, c.name)
        row = {"name": c.name, "tenant": c.tenant or DEFAULT_TENANT, "address": c.address,
               "connection": c.connection, "builder": c.builder,
               "home": homes.get(c.name), "pinned": c.home is not None,
               "cert_expires": None, "live_certs": live.get(c.name, 0), "status": "no certificate (run add-client)"}
        if leaf.crt.exists():
            cert = pki.load_cert(leaf.crt)
            left = pki.days_left(cert, now)
            row["cert_expires"] = cert.not_valid_after_utc.date().isoformat()
            if ca is None or not pki.issued_by(cert, ca):
                row["status"] = "certificate from another CA (run add-client)"
            elif left < 0:
                row["status"] = "EXPIRED"
            elif left < inv.cert_renew_days:
                row["status"] = f"expires in {left} days (run add-client or rotate-certs)"
            else:
                row["status"] = "ok"
        rows.append(row)
    if not removed:
        return rows
    removals: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in revoked(inv):   # one row per removal (or --revoke-old), however many certificates it revoked
        removals.setdefault((r["name"], r["revoked_at"]), []).append(r)
    for (name, when), entries in removals.items():
        rows.append({"name": name, "tenant": None, "address": "-", "connection": "-", "builder": "-",
                     "home": None, "pinned": False, "live_certs": live.get(name, 0),
                     "cert_expires": max(e["not_after"] for e in entries)[:10],
                     "status": f"revoked {when[:10]} ({len(entries)} certificate{'s' * (len(entries) > 1)} on the "
                               f"CRL)"})
    return rows
