"""The gateway's files, rendered from templates/ and the inventory: haproxy.cfg, its compose file, the client map
(who has which role), the tenants map (whose builds go to which buildkitd), the server certificate with its key,
the CA bundle and the CRL."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from buildkit_ops.ci_trust.rules import Trust
from buildkit_ops.engine.contract import Templates
from buildkit_ops.engine.render import Escaped, File, RenderError
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.model import DEFAULT_TENANT, Limits
from buildkit_ops.pki import server as server_pki
from buildkit_ops.roles.gateway import ci_maps
from buildkit_ops.roles.gateway.ci_maps import ci_rules

TEMPLATES = Path(__file__).parent / "templates"
# per-client build limits: the HAProxy action and the two pure modules it requires
BUILD_TURNS = [Path(__file__).parent / "files" / name for name in ("build_turns.lua", "turn_lines.lua",
                                                                   "turn_slots.lua")]
CONNECTIONS = Path(__file__).parent / "files" / "connections.lua"
# builds and sessions are their owner's: the HAProxy action, the two pure modules it requires, and its files (also
# build_turns.lua's)
OWNERSHIP = [Path(__file__).parent / "files" / name for name in ("ownership.lua", "grpc_names.lua", "owners.lua",
                                                                 "folder_files.lua")]
OPERATOR_ROLE = "operator"
# Connections at once: in all (HAProxy's maxconn, which bounds its memory), and from one address (a shared NAT or
# CI range may carry many clients; a flood from one address stops there, before the TLS handshake).
MAX_CONNECTIONS = 4096
MAX_CONNECTIONS_PER_ADDRESS = 256
# HAProxy's runtime API, as the gateway's container sees it (in the daemons' socket folder, which the fleet's
# buildkitd mounts too, and no tenant's daemon: each mounts its own subfolder), and as the host does.
ADMIN_SOCKET = "/run/buildkit/gateway-admin.sock"
# The files the runtime API changes in place (roles/gateway/update.sh): a client's role, limit, tenant and the CRL.
IN_PLACE = ("clients.map", "ci-roles.map", "limits.map", "queues.map", "tenants.map", "room.map", "crl.pem")


@dataclass(frozen=True)
class Refusal:
    file: str              # under /usr/local/etc/haproxy
    message: str


def refusal_response(message: str, status: int) -> bytes:
    """A whole HTTP response (HAProxy's errorfile, CRLF line ends): gRPC's trailers-only answer with this status
    (7: PERMISSION_DENIED, 14: UNAVAILABLE)."""
    return (f"HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: {int(status)}\r\n"
            f"grpc-message: {message}\r\ncontent-length: 0\r\n\r\n").encode()


WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def _word(name: str) -> str:
    if not WORD.fullmatch(name):
        raise RenderError(f"{name!r} cannot be written into the gateway's configuration")
    return name


def _key(name: str) -> str:
    """A map's key: a client's name, or a CI rule's (ci_maps.py)."""
    if ci_maps.CI_KEY.fullmatch(name):
        return name
    return _word(name)


def client_roles(inv: Inventory) -> dict[str, str]:
    """Each certificate name's role: the inventory's clients, the operator, and any other client whose
    certificate is still valid (left out of the inventory by accident: its firewall rule stays, and so does its
    identity; `remove-client` revokes and takes it away)."""
    valid = {p.parent.name: "developer" for p in (inv.pki_dir / "clients").glob("*/client.crt")
             if WORD.fullmatch(p.parent.name)}   # (a folder of another name is no client's: left alone)
    return valid | {c.name: c.role for c in inv.clients.values()} | {server_pki.OPERATOR_CN: OPERATOR_ROLE}


def clients_map(roles: dict[str, str]) -> bytes:
    """One `CN role` line per certificate name whose role is above developer (the default, so that a client left
    out of the inventory by accident keeps building as before, as its firewall rule stays): a name is one word,
    never a second line (the second wall behind the inventory's grammar)."""
    lines = []
    for name, role in sorted(roles.items()):
        if role not in ("developer", "admin", OPERATOR_ROLE) or _word(name) != name:
            raise RenderError(f"{name!r} / {role!r} cannot be written into the gateway's client map")
        if role != "developer":
            lines.append(f"{name} {role}\n")
    return "".join(lines).encode()


def client_limits(inv: Inventory) -> dict[str, Limits]:
    """What each client with a build limit may run and queue at once on a host; and each CI rule's (counted over
    all the jobs it certifies)."""
    ci = {k: Limits(r.builds, r.queue) for k, r in ci_rules(inv.ci_trust).items() if r.builds > 0}
    return {c.name: c.limits for c in inv.clients.values() if c.limits.builds > 0} | ci


def limits_map(limits: dict[str, Limits]) -> bytes:
    """One `CN builds` line per client with a limit (a name is one word: never a second line)."""
    return "".join(f"{_key(name)} {int(n.builds)}\n" for name, n in sorted(limits.items())).encode()


def room_map(max_parallelism: int) -> bytes:
    """The builds this host runs before it is full (its max_parallelism), for the room asked by failover proxies:
    a map, so that a new max_parallelism is in force in place, not by a reload."""
    return f"host {int(max_parallelism)}\n".encode()


def queues_map(limits: dict[str, Limits]) -> bytes:
    """One `CN queue` line per client with a queue limit."""
    return "".join(f"{_key(name)} {int(n.queue)}\n" for name, n in sorted(limits.items()) if n.queue).encode()


@dataclass(frozen=True)
class Routes:
    """Where the gateway sends each client: its tenant's buildkitd. `clients`: client name -> tenant (clients of
    no tenant, and the operator, go to the fleet's buildkitd); `here`: tenant -> its daemon's socket as the
    gateway's container sees it, for the tenants on this host; `elsewhere`: the other tenants, refused here;
    `fleet_here`: whether the fleet's buildkitd is behind this gateway (always on a host; in a tenant's pod of the
    Kubernetes manifests, not: the fleet's clients are refused there like another tenant's)."""
    clients: dict[str, str]
    here: dict[str, str]
    elsewhere: tuple[str, ...]
    fleet_here: bool = True


def routes(inv: Inventory, sockets: dict[str, str]) -> Routes:
    """`sockets`: the tenants on this host -> their daemons' sockets (roles/buildkitd/daemons.py)."""
    ci = {k: r.tenant for k, r in ci_rules(inv.ci_trust).items() if r.tenant}
    return Routes({c.name: c.tenant for c in inv.clients.values() if c.tenant} | ci,
                  sockets, tuple(sorted(set(inv.tenants) - set(sockets))))


def _socket(path: str) -> Escaped:
    if not re.fullmatch(r"/[a-z0-9][a-z0-9/._-]*\.sock", path) or ".." in path:
        raise RenderError(f"{path!r} cannot be written into the gateway's configuration as a socket")
    return Escaped(path)


def tenants_map(clients: dict[str, str]) -> bytes:
    """One `CN tenant` line per client of a tenant (both one word: never a second line)."""
    return "".join(f"{_key(name)} {_word(t)}\n" for name, t in sorted(clients.items())).encode()


def absent_refusal(tenant: str) -> Refusal:
    if tenant == DEFAULT_TENANT:
        return Refusal(f"absent-{DEFAULT_TENANT}.http", "the fleet's buildkitd is not behind this gateway (it serves "
                                                        "one tenant's): build on the fleet's")
    return Refusal(f"absent-{_word(tenant)}.http", f"tenant {tenant} has no buildkitd on this host: build on one of "
                                                   f"its hosts")


def absent_response(message: str) -> bytes:
    """gRPC's trailers-only UNAVAILABLE: a builder then tries its next node."""
    return refusal_response(message, 14)


GENERATION = "pki-generation"   # the generation of the PKI state that last provisioned the host (status reads it)


def render(host: BuildHost, tls: dict[str, bytes], crl: bytes, roles: dict[str, str], limits: dict[str, Limits],
           socket_dir: str, templates: Templates | None = None, tenants: Routes | None = None,
           pki_generation: int = 0, ci_trusts: dict[str, Trust] | None = None) -> list[File]:
    """Every file this role manages on the host (pure). `roles`: certificate name -> role; `limits`: client name
    -> the most builds it runs and queues at once; `tenants`: where each client's builds go, when there are
    tenants (none: every client to the one buildkitd, and no file or line of tenants at all)."""
    bk, d = host.buildkit, host.buildkit.data_dir
    templates = templates or Templates(TEMPLATES)
    routed = tenants if tenants and (tenants.here or tenants.elsewhere) else None
    away = (*routed.elsewhere, *(() if routed.fleet_here else (DEFAULT_TENANT,))) if routed else ()
    absent = {t: absent_refusal(t) for t in away}
    backends = {_word(t): _socket(sock) for t, sock in sorted(routed.here.items())} if routed else {}
    cfg = templates.render("haproxy.cfg.j2", "haproxy", listen=host.listen, port=bk.port,
                           idle_timeout=bk.gateway_idle_timeout,
                           max_connections=MAX_CONNECTIONS, max_connections_per_address=MAX_CONNECTIONS_PER_ADDRESS,
                           admin_socket=_socket(ADMIN_SOCKET), tenants=bool(routed), backends=backends,
                           absent=[(r.file, t) for t, r in absent.items()],
                           ci_port=bk.ci_port if ci_trusts else None, ci_rate=ci_maps.RATE,
                           ci_socket=_socket(ci_maps.SOCKET))
    tenant_files = ([File(f"{d}/gateway/tenants.map", tenants_map(routed.clients))]
                    + [File(f"{d}/gateway/{r.file}", absent_response(r.message)) for r in absent.values()]
                    if routed else [])
    compose = templates.render("docker-compose.yml.j2", "compose", image=bk.gateway_image, data_dir=d,
                               socket_dir=socket_dir)
    return [File(f"{d}/gateway/docker-compose.yml", compose.encode()),
            File(f"{d}/gateway/haproxy.cfg", cfg.encode()),
            File(f"{d}/gateway/clients.map", clients_map(roles)),
            File(f"{d}/gateway/ci-roles.map", ci_maps.roles_map(ci_trusts or {})),
            File(f"{d}/gateway/limits.map", limits_map(limits)),
            File(f"{d}/gateway/queues.map", queues_map(limits)),
            File(f"{d}/gateway/room.map", room_map(bk.max_parallelism)),
            File(f"{d}/gateway/connections.lua", CONNECTIONS.read_bytes()),
            *(File(f"{d}/gateway/{p.name}", p.read_bytes()) for p in OWNERSHIP + BUILD_TURNS),
            File(f"{d}/gateway/crl.pem", crl),
            File(f"{d}/gateway/{GENERATION}", f"{int(pki_generation)}\n".encode()),
            *tenant_files,
            File(f"{d}/gateway/server.pem", tls["server.crt"] + tls["server.key"], 0o600, secret=True),
            File(f"{d}/tls/ca.crt", tls["ca.crt"]),
            File(f"{d}/tls/server.crt", tls["server.crt"])]


def compose_hash(files: list[File], image: str) -> str:
    """What the container must have been created with: its compose file and image (the rest is reloaded)."""
    h = hashlib.sha256(image.encode())
    for f in files:
        if f.path.endswith("/gateway/docker-compose.yml"):
            h.update(f.content)
    return h.hexdigest()[:16]
