"""The gateway's handlers, in the order they run: start or reload it gracefully; or put new maps and a new CRL in
force in place through the runtime API (no reload); then end the open connections of revoked certificates."""
from __future__ import annotations

from pathlib import Path

from buildkit_ops.engine.contract import Handler, HandlerFailed, HandlerResult, Outcome
from buildkit_ops.engine.render import File
from buildkit_ops.engine.shell import command, quote
from buildkit_ops.inventory import BuildHost
from buildkit_ops.roles.gateway.exports import CONTAINER, CUT, RELOAD, SOCKET_DIR
from buildkit_ops.roles.gateway.files import ADMIN_SOCKET, IN_PLACE, compose_hash
from buildkit_ops.roles.gateway.inputs import Ctx, GatewayInput

# The handler that puts new maps and a new CRL in force without a reload (when nothing else changed).
UPDATE = "update gateway in place"
# The runtime API's socket as the host sees it (the gateway's /run/buildkit is the host's SOCKET_DIR).
HOST_ADMIN_SOCKET = f"{SOCKET_DIR}/{Path(ADMIN_SOCKET).name}"
CONF = "/usr/local/etc/haproxy"   # the gateway's folder as its container sees it


def update_env(host: BuildHost, files: list[File]) -> dict[str, str]:
    """What update.sh is given: the maps the gateway reads (tenants.map only where there are tenants) and the CRL."""
    gw = f"{host.buildkit.data_dir}/gateway/"
    names = {f.path.removeprefix(gw) for f in files}
    return {"BKOPS_DIR": gw.rstrip("/"), "BKOPS_SOCK": HOST_ADMIN_SOCKET, "BKOPS_CONF": CONF,
            "BKOPS_MAPS": " ".join(m for m in IN_PLACE if m.endswith(".map") and m in names),
            "BKOPS_CRL": "1" if "crl.pem" in names else ""}


CLAIMS_KEPT_MINUTES = 24 * 60


def reload_script(host: BuildHost, files: list[File], image_id: str | None) -> str:
    """Create or update the container (Compose leaves an unchanged one alone), reload it gracefully so that it
    reads its new files, and wait until the BuildKit port listens."""
    compose_file = quote(host.buildkit.data_dir + "/gateway/docker-compose.yml")
    h = compose_hash(files, image_id or host.buildkit.gateway_image)
    return f"""mkdir -p -m 0700 {quote(SOCKET_DIR)} {quote(SOCKET_DIR + "/owners")} {quote(SOCKET_DIR + "/turns")}
# claims left by workers that have exited (a worker forgets only its own): a day is longer than any build
find {quote(SOCKET_DIR + "/owners")} -type f -mmin +{CLAIMS_KEPT_MINUTES} -delete
started() {{ docker inspect -f '{{{{.Id}}}} {{{{.State.StartedAt}}}}' {CONTAINER} 2>/dev/null; }}
B=$(started)
T=$(mktemp)
S=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
if ! BKOPS_GATEWAY_HASH={h} docker compose -f {compose_file} up -d --remove-orphans --quiet-pull >"$T" 2>&1
then tail -20 "$T" >&2; rm -f "$T"; exit 1; fi
rm -f "$T"
# A container (re)started just now reads its files as it starts, and logs its first load after S: no USR2 (HAProxy's
# master takes the signal only once its first worker is up, and loses one sent before: seen on the lab). S is
# not Docker's StartedAt: HAProxy can log its load before Docker records the start.
if [ "$(started)" = "$B" ]; then
  S=$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)
  docker kill -s USR2 {CONTAINER} >/dev/null
fi
# the new worker has its files once the master says so; the old one stops listening then
for i in $(seq 1 60); do
  L=$(docker logs --since "$S" {CONTAINER} 2>&1 | grep -E 'Loading (success|failure)' | tail -1)
  [ -n "$L" ] && break
  sleep 0.5
done
case "$L" in *success*) ;; *) docker logs --tail 20 {CONTAINER} >&2; exit 1 ;; esac
# the worker has its files; the port is the condition waited on before anyone is told it answers
for i in $(seq 1 60); do
  ss -ltnH "sport = :{int(host.buildkit.port)}" | grep -q . && exit 0
  sleep 0.5
done
docker logs --tail 20 {CONTAINER} >&2; exit 1
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


UPDATE_SCRIPT = (Path(__file__).parent / "update.sh").read_text()


class Update(Handler[BuildHost, GatewayInput]):
    """Put the new maps and CRL in force through the runtime API: no reload, every connection and build goes on."""
    name = UPDATE
    outcome = Outcome.IN_PLACE

    def script(self, ctx: Ctx) -> str:
        env = command("env", *(f"{k}={v}" for k, v in update_env(ctx.target, ctx.rendered or []).items()))
        return f"{env} sh -s <<'BKOPS_UPDATE'\n{UPDATE_SCRIPT}BKOPS_UPDATE\n"

    def result(self, ctx: Ctx, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        if rc != 0:
            raise HandlerFailed("the gateway's maps and CRL could not be put in force in place; `invoke provision` "
                                "reloads it", (err or "").strip()[-400:])
        what = ", ".join((out.get("in_place") or "").split())
        return HandlerResult(f"{what} in force in place (runtime API): no reload, every connection and build goes "
                             f"on", [], out)


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
