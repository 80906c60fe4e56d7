"""The gateway's files, rendered from templates/ and the inventory: haproxy.cfg, its compose file, the client map
(who has which role), the server certificate with its key, the CA bundle and the CRL."""
from __future__ import annotations

import hashlib
import re
from pathlib import Path

from buildkit_ops.engine.contract import Templates
from buildkit_ops.engine.render import File, RenderError
from buildkit_ops.inventory import BuildHost

TEMPLATES = Path(__file__).parent / "templates"
OPERATOR_ROLE = "operator"


def clients_map(roles: dict[str, str]) -> bytes:
    """One `CN role` line per certificate name whose role is above developer (the default, so that a client left
    out of the inventory by accident keeps building as before, as its firewall rule stays): a name is one word,
    never a second line (the second wall behind the inventory's grammar)."""
    lines = []
    for name, role in sorted(roles.items()):
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}", name) or role not in ("developer", "admin",
                                                                                     OPERATOR_ROLE):
            raise RenderError(f"{name!r} / {role!r} cannot be written into the gateway's client map")
        if role != "developer":
            lines.append(f"{name} {role}\n")
    return "".join(lines).encode()


def render(host: BuildHost, tls: dict[str, bytes], crl: bytes, roles: dict[str, str],
           socket_dir: str, templates: Templates | None = None) -> list[File]:
    """Every file this role manages on the host (pure). `roles`: certificate name -> role."""
    bk, d = host.buildkit, host.buildkit.data_dir
    templates = templates or Templates(TEMPLATES)
    cfg = templates.render("haproxy.cfg.j2", "haproxy", port=bk.port, idle_timeout=bk.gateway_idle_timeout)
    compose = templates.render("docker-compose.yml.j2", "compose", image=bk.gateway_image, data_dir=d,
                               socket_dir=socket_dir)
    return [File(f"{d}/gateway/docker-compose.yml", compose.encode()),
            File(f"{d}/gateway/haproxy.cfg", cfg.encode()),
            File(f"{d}/gateway/clients.map", clients_map(roles)),
            File(f"{d}/gateway/crl.pem", crl),
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
