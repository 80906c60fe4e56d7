"""What others may use of the buildx builder role: the builder's nodes as `docker buildx inspect` reports them
(doctor), where its files are on a client (folder_script), and the client's TLS files (client_tls)."""
from __future__ import annotations

from buildkit_ops.engine.render import safe_dirname
from buildkit_ops.engine.shell import quote
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.pki import certs

CERT_FILES = ("ca.pem", "cert.pem", "key.pem")


def client_tls(inv: Inventory, client: Client) -> dict[str, bytes] | None:
    """The client's TLS files as its builder (and its failover proxy) use them: ca.pem (the CAs to trust),
    cert.pem, key.pem; None before its certificate is issued."""
    leaf = certs.client_paths(inv.pki_dir, client.name)
    if not (leaf.crt.exists() and leaf.key.exists()):
        return None
    return {"ca.pem": certs.trust_bundle(inv.pki_dir), "cert.pem": leaf.crt.read_bytes(),
            "key.pem": leaf.key.read_bytes()}


def folder_script(client: Client) -> str:
    """Shell variables: D, the client's docker config folder; B, the builder; F, the builder's folder of files.
    Every value is a quoted word; the paths are built from $D."""
    return (f'D=${{DOCKER_CONFIG:-$HOME/.docker}}\nB={quote(client.builder)}\n'
            f'F="$D/buildkit-ops/"{quote(safe_dirname(client.builder))}\n')


def parse_nodes_status(inspect: str) -> list[tuple[str, str]]:
    """(node name, status) from `docker buildx inspect` output."""
    out, name, in_nodes = [], "?", False
    for line in inspect.splitlines():
        key, _, value = line.partition(":")
        if line.startswith("Nodes:"):
            in_nodes = True
        elif in_nodes and key == "Name":
            name = value.strip()
        elif in_nodes and key == "Status":
            out.append((name, value.strip()))
    return out
