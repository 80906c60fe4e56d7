"""gateway: HAProxy in front of buildkitd on each build host. It terminates mutual TLS on the BuildKit port with
the operator's CA and CRL, names each request's client from its certificate, lets it call only the gRPC
methods of its role (a refusal is a PERMISSION_DENIED that says who, what and which role may), writes one
audit line per call, and forwards to buildkitd's unix socket: buildkitd has no TCP listener.

Certificates, the CA bundle, the CRL and the client maps are the gateway's files, and buildkitd is never
restarted for them. A change of the maps (a client's role, limit or tenant) or of the CRL alone is put in force
in place through HAProxy's runtime API (no reload: update.sh); any other change reloads the gateway gracefully
(the old worker finishes the builds in flight). verify proves the port answers mutual TLS with the operator's
certificate."""
from __future__ import annotations

import time
from typing import Any

from buildkit_ops.engine import image_archive, image_pins, service
from buildkit_ops.engine.contract import (
    HandlerFailed,
    Options,
    PlanError,
    Role,
    Session,
    Step,
)
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command
from buildkit_ops.engine.steps import file_steps, package_step
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.daemons import tenants as tenant_daemons
from buildkit_ops.pki import certs, client_records, generation
from buildkit_ops.pki import crl as crls
from buildkit_ops.pki import server as server_pki
from buildkit_ops.roles.gateway.exports import CONTAINER, CUT, RELOAD, SOCKET_DIR
from buildkit_ops.roles.gateway.facts import GatewayFacts, parse
from buildkit_ops.roles.gateway.files import (
    GENERATION,
    IN_PLACE,
    client_limits,
    client_roles,
    compose_hash,
    render,
    routes,
)
from buildkit_ops.roles.gateway.handlers import HOST_ADMIN_SOCKET, UPDATE, Cut, Reload, Update
from buildkit_ops.roles.gateway.inputs import Ctx, GatewayInput
from buildkit_ops.roles.gateway.probe import Probe


class PortTaken(PlanError):
    pass


def prepare(inv: Inventory, host: BuildHost, options: Options) -> GatewayInput:
    ca = certs.load_ca(inv.pki_dir)
    if ca is not None:
        srv = certs.server_paths(inv.pki_dir, host.name)
        tls = {"ca.crt": certs.trust_bundle(inv.pki_dir), "server.crt": srv.crt.read_bytes(),
               "server.key": srv.key.read_bytes()}
        made = crls.current(inv.pki_dir, client_records.revoked(inv), write=not options.check)
        crl, number = (made.pem, made.number) if made else (b"", None)
    else:   # check mode before a CA exists: placeholders that differ from anything on the host
        tls = {"ca.crt": b"(to be created)\n", "server.crt": b"(to be issued)\n", "server.key": b"(secret)\n"}
        crl, number = b"(to be made)\n", None
    roles = client_roles(inv)
    operator = None if options.check or ca is None else server_pki.operator_cert(inv, ca)
    image_id = image_archive.image_id(host.buildkit.gateway_image_archive, "gateway_image_archive")
    sockets = {d.label: d.gateway_socket for d in tenant_daemons(inv, host)}
    revoked = tuple(sorted({format(int(r["serial"], 16), "x") for r in client_records.revoked(inv)}))
    bk = host.buildkit
    lock = image_pins.lock_path(inv.file) if image_pins.pinnable(bk.gateway_image, bk.gateway_image_archive) else None
    pin = image_pins.read(lock).get(bk.gateway_image) if lock else None
    return GatewayInput(tls, crl, number, roles, client_limits(inv), image_id, operator, routes(inv, sockets),
                        revoked, generation.current(inv.pki_dir), pin, lock, crls.own_key_ids(inv.pki_dir),
                        dict(inv.ci_trust))


class StalePki(PlanError):
    pass


class NotHostAddress(PlanError):
    pass


def plan(host: BuildHost, files: list[File], facts: GatewayFacts, states: dict[str, FileState],
         image_id: str | None, crl_number: int | None = None, pin: str | None = None,
         own_cas: frozenset[str] = frozenset()) -> list[Step]:
    bk = host.buildkit
    # A PKI never goes back: a state older than the host's (a stale export, a second operator behind) would put
    # back a CRL without the latest revocations, and the run stops on this host before any change of any role.
    # (a CRL of another deployment's CA says nothing of this state's age: it is replaced, as before)
    ours = crls.of_this_pki(facts.crl_issuer, own_cas, crl_number)
    if facts.crl_number is not None and crls.standing(facts.crl_number, crl_number, ours) == "ahead":
        raise StalePki(crls.stale_pki(host.name, facts.crl_number, facts.crl_signed, crl_number))
    if host.private_address and host.private_address not in facts.addresses:
        raise NotHostAddress(f"{host.name}: private_address {host.private_address} is not an address of {host.name} "
                             f"(it has {', '.join(facts.addresses) or 'none that `ip addr` shows'}): the gateway could "
                             f"not listen there; nothing was changed. Fix: write {host.name}'s address on its private "
                             f"network in the inventory")
    holder = facts.listener
    if holder and not any(name in holder for name in ('"haproxy"', '"buildkitd"')):
        raise PortTaken(f"port {bk.port} is already taken on {host.name} by: {holder.split('users:')[-1]}; stop "
                        f"that service or set buildkit.port to a free port in the inventory")
    gw = f"{bk.data_dir}/gateway/"
    steps = file_steps("gateway", files, states, [RELOAD], name=lambda f: f.path.removeprefix(bk.data_dir + "/"))
    in_place = {id(step) for f, step in zip(files, steps, strict=True) if f.path.removeprefix(gw) in IN_PLACE}
    # a new CRL also ends the open connections of the certificates it revokes (file_steps: one step per file)
    for f, step in zip(files, steps, strict=True):
        if step.changed and f.path == f"{gw}crl.pem":
            step.notify.append(CUT)
        if f.path == f"{gw}{GENERATION}":
            step.notify.clear()      # (a record for status: HAProxy never reads it)
    if facts.old_key:   # (the gateway holds the key in gateway/server.pem: no second copy lies around)
        steps.append(Step("gateway", "tls/server.key", True, "buildkitd's before the gateway: removed",
                          script=command("rm", "-f", f"{bk.data_dir}/tls/server.key") + "\n"))
    stale = sorted(set(facts.replies) - {f.path.removeprefix(gw) for f in files})
    if stale:   # replies no longer rendered (an earlier version's per-client refusals, a tenant gone)
        steps.append(Step("gateway", "replies no longer used", True, f"removed: {', '.join(stale)}",
                          script=command("rm", "-f", *(gw + name for name in stale)) + "\n"))
    steps.append(package_step("gateway", "socat (the runtime API's client)", [] if facts.socat else ["socat"]))
    want = service.Image(bk.gateway_image, bk.gateway_image_archive, image_id, pin)
    steps.append(service.image_step("gateway", want, facts.image_id, facts.image_digests, [RELOAD]))
    others = [s for s in steps if id(s) not in in_place]
    steps.append(service.service_step("gateway", facts.state, facts.started, facts.compose_hash,
                                      compose_hash(files, image_id or bk.gateway_image),
                                      any(s.notify for s in others), [RELOAD], start="absent: start"))
    # the maps and the CRL alone changed, and a gateway with the runtime API runs: put them in force in place
    reloads = any(s.changed and RELOAD in s.notify for s in others + steps[-1:])
    if facts.state == "running" and facts.admin and not reloads:
        for step in (s for s in steps if id(s) in in_place):
            step.notify = [UPDATE if n == RELOAD else n for n in step.notify]
    return steps


class GatewayRole(Role[BuildHost, GatewayInput, GatewayFacts]):
    name = "gateway"
    # (in this order: a CRL is in force, by a reload or in place, before the connections it revokes are ended)
    handlers = {RELOAD: Reload(), UPDATE: Update(), CUT: Cut()}
    verify_title = "answers over mutual TLS"

    parse = staticmethod(parse)

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> GatewayInput:
        return prepare(inv, target, options)

    def fact_env(self, target: BuildHost) -> dict[str, str]:
        return {"BKOPS_GATEWAY_IMAGE": target.buildkit.gateway_image, "BKOPS_PORT": str(target.buildkit.port),
                "BKOPS_DATA_DIR": target.buildkit.data_dir, "BKOPS_ADMIN_SOCKET": HOST_ADMIN_SOCKET}

    def files(self, ctx: Ctx) -> list[File]:
        i = ctx.input
        return render(ctx.target, i.tls, i.crl, i.roles, i.limits, SOCKET_DIR, self.templates, i.tenants,
                      i.generation, i.ci_trusts)

    def plan(self, ctx: Ctx, facts: GatewayFacts, files: dict[str, FileState]) -> list[Step]:
        return plan(ctx.target, self.managed(ctx), facts, files, ctx.input.image_id, ctx.input.crl_number,
                    ctx.input.pin, ctx.input.own_cas)

    def info(self, facts: GatewayFacts) -> dict[str, Any]:
        return {"gateway": facts.state}

    def start_probe(self, ctx: Ctx, sess: Session) -> Probe | None:
        return Probe(sess, ctx.target, ctx.input.tls["ca.crt"], ctx.input.operator) if ctx.input.operator else None

    def verify(self, ctx: Ctx, facts: GatewayFacts, sess: Session, probe: Any, restarted: bool) -> str | None:
        if ctx.input.lock is not None and ctx.input.pin is None:   # pulled by tag: pinned from now on
            image_pins.record_from_host(ctx.input.lock, ctx.target.buildkit.gateway_image, sess.run)
        if restarted or probe is None:   # the first probe talked to the old gateway
            probe = self.start_probe(ctx, sess)
        if probe is None:
            return None
        # the gateway refuses connections while buildkitd is down: a probe started before buildkitd was
        # (re)started in this run, or just after, is asked again until the gateway sees buildkitd (1 s checks)
        for attempt in range(10):
            try:
                return f"{probe.result()} through the gateway"
            except Exception as e:   # ssl.SSLError, a refused channel (paramiko), a closed one
                if attempt == 9:
                    raise HandlerFailed(f"the gateway does not answer mutual TLS: {e}; see `docker logs "
                                        f"{CONTAINER}` on the host") from None
                time.sleep(0.5)
                probe = self.start_probe(ctx, sess)
        return None


ROLE = GatewayRole()
