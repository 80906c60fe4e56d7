"""rotate-certs: reissue server and client certificates, and rotate the CA itself
with an overlap window, so nobody is stranded.

buildkitd reads its certificates only at start, so every server change is a
restart: provision's handler first waits until no build runs (--wait, or
--force). The cache volume is never touched.

CA rotation phases (recorded in pki_dir/rotation.yml after each one; a re-run
after an interruption carries on from the phase reached):

  1 next-ca             create the next CA in pki_dir/next/ (its key stays here, 0600)
  2 servers-trust-both  every server trusts old + next CA for client certificates
  3 clients-new         every client gets a certificate from the next CA, and trusts both CAs
  4 servers-new         every server gets a certificate from the next CA
  5 drop-old            the next CA becomes the CA; servers trust only it; the old one is retired
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_ops.engine.contract import Options
from buildkit_ops.errors import BkopsError
from buildkit_ops.flows.clients import ClientError, check_machine, host_platforms, setup_client
from buildkit_ops.flows.provision import ACCESS, provision, report_pending
from buildkit_ops.inventory import BuildHost, Client, Inventory
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import client_records, generation
from buildkit_ops.report.results import HostResult, Reporter
from buildkit_ops.roles.ci_runner.exports import SECRETS, folder

PHASES = ["next-ca", "servers-trust-both", "clients-new", "servers-new", "drop-old"]


class RotationError(BkopsError):
    pass


def _provision_all(inv: Inventory, rep: Reporter, res: HostResult, what: str, wait: int, force: bool,
                   reissue: bool = False, hosts: list[BuildHost] | None = None) -> dict[str, str]:
    """Provision (all) hosts; returns each host's platforms for the clients' builder nodes."""
    results = provision(inv, hosts or inv.select(None), Options(wait=wait, force=force, roles=ACCESS),
                        Reporter(quiet=True), reissue)
    for r in results:
        restarted, reloaded, in_place = r.restarted, r.reloaded, r.changed_in_place
        rep.step(res, "server", f"{r.host}: {what}", "failed" if r.failed else
                 ("changed" if restarted or reloaded or in_place else "ok"),
                 r.error or ("restarted once no build was running; cache kept" if restarted else
                             "gateway reloaded; buildkitd and running builds untouched" if reloaded else
                             "gateway's maps and CRL changed in place; no reload" if in_place else "up to date"))
    report_pending(rep, res, results)
    bad = [r.host for r in results if r.failed]
    if bad:
        raise RotationError(f"{', '.join(bad)}: {what} failed (see above); fix it and re-run rotate-certs: it "
                            f"carries on from where it stopped")
    return {r.host: r.info.get("platforms", "") for r in results}


def _rebootstrap(inv: Inventory, c: Client, rep: Reporter, res: HostResult, reissue: bool,
                 platforms: dict[str, str]) -> bool:
    """New certificate (if reissue) and files for one client, through its roles; False if it cannot be reached."""
    signer = pki.signing_ca(inv.pki_dir, "client")
    if signer is None:
        raise RotationError(f"there is no CA in {inv.pki_dir}: run `invoke provision` first")
    try:
        check_machine(inv, c, Options(platforms=platforms))  # reachable, before a certificate is issued for it
        leaf = pki.client_paths(inv.pki_dir, c.name)
        reason = pki.ensure_leaf(leaf, signer, c.name, inv.cert_days, inv.cert_renew_days, force=reissue)
        if reason:
            rep.step(res, "pki", f"{c.name}: client certificate", "changed", f"issued ({reason})")
        sub = HostResult(c.name)
        setup_client(inv, c, Options(platforms=platforms), Reporter(quiet=True), sub)
    except ClientError as e:
        rep.step(res, "client", c.name, "failed", str(e))
        return False
    changed = any(s.status == "changed" for s in sub.steps)
    if c.connection == "none":  # a CI runner: only the operator can bring it the new files
        rep.step(res, "client", f"{c.name}: CI secrets", "changed" if changed else "ok",
                 f"NEEDS NEW SECRETS: update {', '.join(SECRETS.values())} in its CI from {folder(inv, c)}"
                 if changed else "unchanged")
        return True
    rep.step(res, "client", f"{c.name}: builder files", "changed" if changed else "ok",
             "new certificate and CA bundle in place; builder verified" if changed else "verified")
    return True


@dataclass
class Fleet:
    """The rotation's hands on the machines (a unit test gives stand-ins): provision the hosts, re-bootstrap a
    client with its current or a new certificate, read each host's platforms."""
    provision_all: Callable[..., dict[str, str]] = _provision_all
    rebootstrap: Callable[..., bool] = _rebootstrap
    platforms: Callable[[Inventory], dict[str, str]] = host_platforms


def rotate_leaves(inv: Inventory, host_spec: str | None, client_names: list[str] | None, rep: Reporter,
                  wait: int, force: bool, do_hosts: bool, do_clients: bool, fleet: Fleet | None = None,
                  revoke_old: bool = False) -> HostResult:
    """New server and/or client certificates. With revoke_old (a key suspected stolen), every earlier certificate
    of each rotated client goes on the CRL once its new one is in place, and every gateway gets that CRL in the
    same run: the stolen key is refused from then on, from any address."""
    fleet = fleet or Fleet()
    res = HostResult("rotation")
    if pki.load_ca(inv.pki_dir) is None:
        raise RotationError(f"there is no CA in {inv.pki_dir}: run `invoke provision` first")
    platforms = None
    if do_hosts:
        platforms = fleet.provision_all(inv, rep, res, "new server certificate", wait, force, reissue=True,
                                   hosts=inv.select(host_spec))
    if do_clients:
        chosen = [inv.client(n) for n in client_names] if client_names else list(inv.clients.values())
        if platforms is None or set(platforms) != set(inv.hosts):
            platforms = fleet.platforms(inv)
        failed = [c.name for c in chosen if not fleet.rebootstrap(inv, c, rep, res, True, platforms)]
        if revoke_old:
            _revoke_older(inv, [c for c in chosen if c.name not in failed], rep, res, fleet, wait, force)
        if failed:
            raise RotationError(f"not rotated: {', '.join(failed)} (unreachable or failing, see above). Their "
                                f"current certificates stay valid; re-run `invoke rotate-certs --client "
                                f"{','.join(failed)}` when they are reachable")
    return res


def _revoke_older(inv: Inventory, rotated: list[Client], rep: Reporter, res: HostResult, fleet: Fleet, wait: int,
                  force: bool) -> None:
    revoked = []
    for c in rotated:
        entries = client_records.revoke(inv, c.name, keep_current=True)
        revoked += entries
        rep.step(res, "pki", f"{c.name}: older certificates", "changed" if entries else "ok",
                 f"revoked: serial {', '.join(e['serial'] for e in entries)}" if entries else "none left to revoke")
    if revoked:
        fleet.provision_all(inv, rep, res, "CRL with the older certificates", wait, force)


def ci_runners(inv: Inventory) -> list[Client]:
    return [c for c in inv.clients.values() if c.connection == "none"]


def rotate_ca(inv: Inventory, rep: Reporter, wait: int, force: bool, fleet: Fleet | None = None,
              ci_updated: bool = False) -> HostResult:
    """The five phases. CI runners (`connection: none`) get their new files in phase 3 like every client, but
    only the operator can put them into the CI: the rotation pauses after phase 3 until it is re-run with
    ci_updated, since phase 4 gives the servers certificates that the runners' old CA bundle does not trust."""
    fleet = fleet or Fleet()
    res = HostResult("ca-rotation")
    d = inv.pki_dir
    current = pki.load_ca(d)
    if current is None:
        raise RotationError(f"there is no CA in {d}: run `invoke provision` first")
    st = pki.rotation_state(d)
    done = st.get("done", [])
    if done:
        rep.step(res, "rotation", "resume", "ok", f"phases already done: {', '.join(done)}")

    def mark(phase: str, **extra: Any) -> None:
        st.setdefault("done", []).append(phase)
        st.update(extra)
        pki.save_rotation_state(d, st)
        rep.step(res, "rotation", f"phase {PHASES.index(phase) + 1}/5 {phase}", "changed", "recorded")

    if "next-ca" not in done:
        if pki.load_ca(d / "next") is None:
            (d / "next").mkdir(mode=0o700, exist_ok=True)
            pki.create_ca(d / "next", inv.ca_days, name="buildkit-ops CA (next)")
            generation.bump(d)
        mark("next-ca", old_serial=format(current.cert.serial_number, "x"), signing={"server": "current",
                                                                                     "client": "current"})
    if "servers-trust-both" not in done:
        fleet.provision_all(inv, rep, res, "trust old and next CA", wait, force)
        mark("servers-trust-both")
    if "clients-new" not in done:
        st["signing"]["client"] = "next"
        pki.save_rotation_state(d, st)
        platforms = fleet.platforms(inv)
        failed = [c.name for c in inv.clients.values() if not fleet.rebootstrap(inv, c, rep, res, False, platforms)]
        if failed and not force:
            raise RotationError(f"{', '.join(failed)} could not get a certificate from the next CA; dropping the old "
                                f"CA now would strand them. Make them reachable and re-run rotate-certs --ca (or "
                                f"add --force to strand them)")
        mark("clients-new")
        done = st["done"]
    if "servers-new" not in done and ci_runners(inv) and not ci_updated:
        names = ", ".join(c.name for c in ci_runners(inv))
        raise RotationError(f"paused after phase 3/5: the CI runners {names} need their new secrets before the "
                            f"servers get certificates from the next CA. Update their CI secrets from "
                            f"{', '.join(str(folder(inv, c)) for c in ci_runners(inv))}, "
                            f"then run `invoke rotate-certs --ca --ci-updated` to finish")
    if "servers-new" not in done:
        st["signing"]["server"] = "next"
        pki.save_rotation_state(d, st)
        fleet.provision_all(inv, rep, res, "server certificate from the next CA", wait, force)
        mark("servers-new")
    if "drop-old" not in done:
        _promote(d, st["old_serial"])
        generation.bump(d)
        st["signing"] = {"server": "current", "client": "current"}
        pki.save_rotation_state(d, st)
        platforms = fleet.provision_all(inv, rep, res, "trust only the new CA", wait, force)
        for c in inv.clients.values():  # drop the old CA from the clients' bundles; not needed to work
            fleet.rebootstrap(inv, c, rep, res, False, platforms)
        st.setdefault("done", []).append("drop-old")
        pki.save_rotation_state(d, None)
        rep.step(res, "rotation", "phase 5/5 drop-old", "changed",
                 f"old CA retired to {d / 'retired'}; certificates it signed are refused from now on")
    return res


def _promote(d: Path, old_serial: str) -> None:
    """next/ becomes the CA; the old CA moves to retired/. Safe to repeat after an interruption."""
    retired = d / "retired"
    retired.mkdir(mode=0o700, exist_ok=True)
    cur = pki.load_ca(d)
    if cur is not None and format(cur.cert.serial_number, "x") == old_serial:
        for name in ("ca.key", "ca.crt"):
            os.replace(d / name, retired / f"ca-{old_serial}.{name.split('.')[1]}")
    for name in ("ca.key", "ca.crt"):
        if (d / "next" / name).exists():
            os.replace(d / "next" / name, d / name)
    if (d / "next").exists() and not any((d / "next").iterdir()):
        (d / "next").rmdir()
