"""gateway: HAProxy in front of buildkitd on each build host. It terminates mutual TLS on the BuildKit port with
the operator's CA and CRL, names each request's client from its certificate, lets it call only the gRPC
methods of its role (a refusal is a PERMISSION_DENIED that says who, what and which role may), writes one
audit line per call, and forwards to buildkitd's unix socket: buildkitd has no TCP listener.

Certificates, the CA bundle, the CRL and the client map are the gateway's files: a change reloads it
gracefully (the old worker finishes the builds in flight), and buildkitd is never restarted for them. verify
proves the port answers mutual TLS with the operator's certificate."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from buildkit_ops.engine import image_archive, image_pins, service
from buildkit_ops.engine.contract import (
    Context,
    Handler,
    HandlerFailed,
    HandlerResult,
    Options,
    Outcome,
    PlanError,
    Role,
    Session,
    Step,
)
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.shell import command, quote
from buildkit_ops.engine.steps import file_steps
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.daemons import tenants as tenant_daemons
from buildkit_ops.pki import certs, client_records, generation
from buildkit_ops.pki import crl as crls
from buildkit_ops.pki import server as server_pki
from buildkit_ops.pki.certs import Leaf
from buildkit_ops.roles.gateway.exports import CONTAINER, CUT, RELOAD, SOCKET_DIR
from buildkit_ops.roles.gateway.facts import GatewayFacts, parse
from buildkit_ops.roles.gateway.files import (
    GENERATION,
    Routes,
    client_limits,
    client_roles,
    compose_hash,
    render,
    routes,
)
from buildkit_ops.roles.gateway.probe import Probe


class PortTaken(PlanError):
    pass


@dataclass(frozen=True)
class GatewayInput:
    """What the gateway is planned from: the TLS files (CA bundle, the host's certificate and key), the CRL, each
    certificate name's role, the image id inside gateway_image_archive (if any), and the operator's
    certificate for the mutual-TLS proof, and where each client's builds go (its tenant's buildkitd)."""
    tls: dict[str, bytes]
    crl: bytes
    crl_number: int | None
    roles: dict[str, str]
    limits: dict[str, int]
    image_id: str | None
    operator: Leaf | None = None
    tenants: Routes | None = None
    revoked: tuple[str, ...] = ()      # serials on the CRL (lower-case hex): their open connections are ended
    generation: int = 0                # of the operator's PKI state (written on the host, read by status)
    pin: str | None = None             # the image's digest in images.lock (a tag pulled from a registry)
    lock: Path | None = None           # images.lock, where a tag pulled unpinned gets its pin
    own_cas: frozenset[str] = frozenset()   # key ids of every CA of this PKI state (a host's CRL of ours or not)


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
                        revoked, generation.current(inv.pki_dir), pin, lock, crls.own_key_ids(inv.pki_dir))


Ctx = Context[BuildHost, GatewayInput]


class StalePki(PlanError):
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
    holder = facts.listener
    if holder and not any(name in holder for name in ('"haproxy"', '"buildkitd"')):
        raise PortTaken(f"port {bk.port} is already taken on {host.name} by: {holder.split('users:')[-1]}; stop "
                        f"that service or set buildkit.port to a free port in the inventory")
    steps = file_steps("gateway", files, states, [RELOAD], name=lambda f: f.path.removeprefix(bk.data_dir + "/"))
    # a new CRL also ends the open connections of the certificates it revokes (file_steps: one step per file)
    for f, step in zip(files, steps, strict=True):
        if step.changed and f.path == f"{bk.data_dir}/gateway/crl.pem":
            step.notify.append(CUT)
        if f.path == f"{bk.data_dir}/gateway/{GENERATION}":
            step.notify.clear()      # (a record for status: HAProxy never reads it)
    if facts.old_key:   # (the gateway holds the key in gateway/server.pem: no second copy lies around)
        steps.append(Step("gateway", "tls/server.key", True, "buildkitd's before the gateway: removed",
                          script=command("rm", "-f", f"{bk.data_dir}/tls/server.key") + "\n"))
    want = service.Image(bk.gateway_image, bk.gateway_image_archive, image_id, pin)
    steps.append(service.image_step("gateway", want, facts.image_id, facts.image_digests, [RELOAD]))
    steps.append(service.service_step("gateway", facts.state, facts.started, facts.compose_hash,
                                      compose_hash(files, image_id or bk.gateway_image), any(s.notify for s in steps),
                                      [RELOAD], start="absent: start"))
    return steps


def reload_script(host: BuildHost, files: list[File], image_id: str | None) -> str:
    """Create or update the container (Compose leaves an unchanged one alone), reload it gracefully so that it
    reads its new files, and wait until the BuildKit port listens."""
    compose_file = quote(host.buildkit.data_dir + "/gateway/docker-compose.yml")
    h = compose_hash(files, image_id or host.buildkit.gateway_image)
    return f"""mkdir -p -m 0700 {quote(SOCKET_DIR)}
T=$(mktemp)
if ! BKOPS_GATEWAY_HASH={h} docker compose -f {compose_file} up -d --remove-orphans --quiet-pull >"$T" 2>&1
then tail -20 "$T" >&2; rm -f "$T"; exit 1; fi
rm -f "$T"
S=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
docker kill -s USR2 {CONTAINER} >/dev/null
# the new worker has its files once the master says so; the old one stops listening then
for i in $(seq 1 60); do
  L=$(docker logs --since "$S" {CONTAINER} 2>&1 | grep -E 'Loading (success|failure)' | tail -1)
  [ -n "$L" ] && break
  sleep 0.5
done
case "$L" in *success*) ;; *) docker logs --tail 20 {CONTAINER} >&2; exit 1 ;; esac
ss -ltnH "sport = :{int(host.buildkit.port)}" | grep -q . || {{ docker logs --tail 20 {CONTAINER} >&2; exit 1; }}
"""


class Reload(Handler[BuildHost, GatewayInput]):
    """Start the gateway, or reload it gracefully: buildkitd and the builds in flight are left alone."""
    name = RELOAD
    outcome = Outcome.RELOAD

    def script(self, ctx: Ctx) -> str:
        return reload_script(ctx.target, ctx.rendered or [], ctx.input.image_id)

    def result(self, ctx: Ctx, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        if rc != 0:
            raise HandlerFailed(f"the gateway did not start: see `docker logs {CONTAINER}` on the host",
                                (err or "").strip()[-400:])
        return HandlerResult("reloaded; buildkitd and running builds untouched", [], out)


CUT_SCRIPT = (Path(__file__).parent / "cut.sh").read_text()


class Cut(Handler[BuildHost, GatewayInput]):
    """After the new CRL is in force: end the open connections of revoked certificates, in every worker (the
    reload's old one too), at once; every other connection and build goes on."""
    name = CUT
    outcome = Outcome.RELOAD

    def script(self, ctx: Ctx) -> str:
        env = command("env", f"BKOPS_PORT={int(ctx.target.buildkit.port)}",
                      "BKOPS_REVOKED=" + " ".join(ctx.input.revoked))
        return f"{env} sh -s <<'BKOPS_CUT'\n{CUT_SCRIPT}BKOPS_CUT\n"

    def result(self, ctx: Ctx, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        if rc != 0:
            raise HandlerFailed("the open connections of revoked certificates could not be ended",
                                (err or "").strip()[-400:])
        n = (out.get("cut") or "0").strip()
        return HandlerResult(f"ended {n} open connection(s) of revoked certificates; others untouched", [], out)


class GatewayRole(Role[BuildHost, GatewayInput, GatewayFacts]):
    name = "gateway"
    handlers = {RELOAD: Reload(), CUT: Cut()}
    verify_title = "answers over mutual TLS"

    parse = staticmethod(parse)

    def prepare(self, inv: Inventory, target: BuildHost, options: Options) -> GatewayInput:
        return prepare(inv, target, options)

    def fact_env(self, target: BuildHost) -> dict[str, str]:
        return {"BKOPS_GATEWAY_IMAGE": target.buildkit.gateway_image, "BKOPS_PORT": str(target.buildkit.port),
                "BKOPS_DATA_DIR": target.buildkit.data_dir}

    def files(self, ctx: Ctx) -> list[File]:
        i = ctx.input
        return render(ctx.target, i.tls, i.crl, i.roles, i.limits, SOCKET_DIR, self.templates, i.tenants,
                      i.generation)

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
