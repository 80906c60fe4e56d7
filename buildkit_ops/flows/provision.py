"""provision: make build hosts what the inventory says. Per host: reach it over SSH (an unreachable host gets
nothing issued), prepare on the operator machine what its roles need (certificates, the image archive's id,
the client allowlist), then hand the roles to the runner (gather, plan, show or apply, handlers, verify).
Several hosts run in parallel; one failing does not stop the others."""
from __future__ import annotations

import ssl
import time

import paramiko

from buildkit_ops.engine.contract import Context, HandlerFailed, PlanError
from buildkit_ops.engine.parallel import in_parallel
from buildkit_ops.engine.role_path import load
from buildkit_ops.engine.runner import run_host
from buildkit_ops.engine.session import HostSession
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import server as server_pki
from buildkit_ops.report.output import HostResult, Reporter
from buildkit_ops.roles.buildkitd import wanted_image_id


def context(inv: Inventory, host: BuildHost, ca: pki.CA | None, check: bool, wait: int = 300, force: bool = False,
            drop_clients: bool | set[str] = False) -> Context:
    """What the roles plan this host from. In check mode before a CA exists, the TLS files are placeholders
    that differ from anything on the host (so they show as would-change), and there is no operator
    certificate to probe with."""
    if ca is not None:
        srv = pki.server_paths(inv.pki_dir, host.name)
        tls = {"ca.crt": pki.trust_bundle(inv.pki_dir), "server.crt": srv.crt.read_bytes(),
               "server.key": srv.key.read_bytes()}
    else:
        tls = {"ca.crt": b"(to be created)\n", "server.crt": b"(to be issued)\n", "server.key": b"(secret)\n"}
    return Context(inv=inv, host=host, tls=tls, image_id=wanted_image_id(host),
                   clients={c.name: c.address for c in inv.clients.values()}, drop_clients=drop_clients,
                   wait=wait, force=force, operator=None if check or ca is None else server_pki.operator_cert(inv, ca))


def provision_host(inv: Inventory, host: BuildHost, check: bool, rep: Reporter, wait: int = 300,
                   force: bool = False, reissue: bool = False, drop_clients: bool | set[str] = False) -> HostResult:
    """wait: seconds to wait for running builds before a restart (then fail, or restart anyway with force);
    reissue: issue a new server certificate even if the current one is fine (rotation)."""
    res = HostResult(host.name)
    t0 = time.monotonic()
    sess = None
    try:
        try:
            sess = HostSession(host)
        except RemoteError as e:
            rep.fail(res, str(e), unreachable=True)
            return res
        pki_steps, ca = server_pki.ensure(inv, host, check, force=reissue)
        for s in pki_steps:
            rep.step(res, s.role, s.name, ("would change" if check else "changed") if s.changed else "ok", s.detail)
        run_host(sess, load(), context(inv, host, ca, check, wait, force, drop_clients), check, rep, res)
    except (RemoteError, PlanError, HandlerFailed, FileNotFoundError, paramiko.SSHException, ssl.SSLError,
            TimeoutError, OSError) as e:
        rep.fail(res, str(e))
    finally:
        if sess is not None:
            res.info["remote_commands"] = sess.commands
            sess.close()
        res.info["seconds"] = round(time.monotonic() - t0, 2)
    return res


def provision(inv: Inventory, hosts: list[BuildHost], check: bool, rep: Reporter, wait: int = 300,
              force: bool = False, reissue: bool = False, drop_clients: bool | set[str] = False) -> list[HostResult]:
    pki.load_ca(inv.pki_dir)  # a corrupt or unreadable CA stops the run before any host is contacted

    if len(hosts) > 1 and not check:
        pki.ensure_ca(inv.pki_dir, inv.ca_days)  # before the hosts run in parallel (each would create one)
    return in_parallel(hosts, lambda h: provision_host(inv, h, check, rep, wait, force, reissue, drop_clients))
