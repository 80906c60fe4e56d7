"""provision: make build hosts what the inventory says. Per host: reach it over SSH (an unreachable host gets
nothing issued), issue its server certificate on the operator machine, then hand the host's roles to the
runner (each prepares its own input; gather, plan, show or apply, handlers, verify). Several hosts run in
parallel; one failing does not stop the others."""
from __future__ import annotations

import ssl
import time
from collections.abc import Callable

import paramiko

from buildkit_ops.engine import host_lock, image_pins, role_path, runner
from buildkit_ops.engine.contract import HandlerFailed, Options, PlanError
from buildkit_ops.engine.parallel import in_parallel
from buildkit_ops.engine.session import SshSession
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory import edit as inventory_edit
from buildkit_ops.pki import certs, vpn_keys
from buildkit_ops.pki import server as server_pki
from buildkit_ops.report.results import HostResult, Reporter, StepResult


def provision_host(inv: Inventory, host: BuildHost, options: Options, rep: Reporter,
                   reissue: bool = False) -> HostResult:
    """reissue: issue a new server certificate even if the current one is fine (rotation)."""
    res = HostResult(host.name)
    t0 = time.monotonic()
    sess = None
    lock: host_lock.Ride | None = None
    try:
        try:
            sess = SshSession.to_host(host)
        except RemoteError as e:
            rep.fail(res, str(e), unreachable=True)
            return res
        if not options.check:   # (a check changes nothing: it takes no lock, and waits for none)
            lock = host_lock.Ride(sess, "provision", wait=options.lock_wait)   # (taken beside the facts)
        for s in server_pki.ensure(inv, host, options.check, force=reissue):
            rep.step(res, s.role, s.name, ("would change" if options.check else "changed") if s.changed else "ok",
                     s.detail)
        plays = runner.prepare(inv, host, role_path.load(inv.file.parent, "host"), options)
        runner.run(sess, plays, options.check, rep, res, options, lock=lock)
    except (RemoteError, PlanError, HandlerFailed, FileNotFoundError, paramiko.SSHException, ssl.SSLError,
            TimeoutError, OSError) as e:
        rep.fail(res, str(e))
    finally:
        if lock is not None:
            lock.release()
        if sess is not None:
            res.info["remote_commands"] = sess.commands
            sess.close()
        res.info["seconds"] = round(time.monotonic() - t0, 2)
    return res


# The roles a change of who may build touches (add-client, remove-client, rotate-certs): the firewall's allowlist,
# the gateway's certificates, maps and CRL, the VPN's peers. Those runs apply nothing else: other drift is reported
# as pending.
ACCESS = frozenset({"firewall", "gateway", "vpn"})


def report_pending(rep: Reporter, res: HostResult, results: list[HostResult]) -> None:
    """One line per change a narrow run saw and left for a provision (a GC edit, a new template)."""
    for r in results:
        for s in r.steps:
            if s.status == "pending":
                rep.step(res, "pending", f"{r.host}: {s.who}: {s.name}", "pending",
                         f"{s.detail}: run `invoke provision --host {r.host}`".lstrip(": "))


def report_narrow(rep: Reporter, results: list[HostResult], shows: Callable[[StepResult], bool]) -> list[HostResult]:
    """A narrow run told per host: its failure, the steps it shows that changed or failed, and what it left
    pending for a provision."""
    shown = []
    for r in results:
        told = HostResult(r.host, error=r.error, unreachable=r.unreachable)
        shown.append(told)
        if r.error:
            rep.fail(told, r.error, r.unreachable)
        for st in r.steps:
            if st.status in ("changed", "failed") and shows(st):
                rep.step(told, st.role, st.name, st.status, st.detail, instance=st.instance)
        report_pending(rep, told, [r])
    return shown


def provision(inv: Inventory, hosts: list[BuildHost], options: Options, rep: Reporter,
              reissue: bool = False) -> list[HostResult]:
    certs.load_ca(inv.pki_dir)  # a corrupt or unreadable CA stops the run before any host is contacted
    role_path.load(inv.file.parent, "host")  # an operator's role that cannot load stops it too
    image_pins.read(image_pins.lock_path(inv.file))   # and an images.lock that is not exactly pins
    if len(hosts) > 1 and not options.check:
        ca, _ = certs.ensure_ca(inv.pki_dir, inv.ca_days)  # before the hosts run in parallel (each would create one)
        # and the operator's certificate: issued while the hosts prepare, it would move the PKI's generation under
        # some of them only (each host records the generation it was provisioned from)
        server_pki.operator_cert(inv, ca)
    new_slots = {t.name: t.slot for t in inv.tenants.values() if not t.slot_recorded}
    if new_slots and not options.check:   # before any host gets a tenant's bridge: never moved after that
        inventory_edit.record_tenant_slots(inv.file, new_slots)
    if inv.vpn_unrecorded and not options.check:   # before any peer is configured with them: never moved after
        inventory_edit.record_vpn_addresses(inv.file, inv.vpn_unrecorded)
    results = in_parallel(hosts, lambda h: provision_host(inv, h, options, rep, reissue))
    if not options.check:
        record_vpn_keys(inv, results)
    return results


def record_vpn_keys(inv: Inventory, results: list[HostResult]) -> None:
    """Each build host's public key, as its tunnel reports it (a client's peers are made from them)."""
    for r in results:
        key = (r.info.get("vpn") or {}).get("public_key")
        if key:
            vpn_keys.record(inv.pki_dir, "hosts", r.host, key)
