"""What others may use of the buildx builder role: the builder's nodes as `docker buildx inspect` reports them
(doctor), and where its files are on a client (folder_script)."""
from __future__ import annotations

from buildkit_ops.engine.render import safe_dirname
from buildkit_ops.engine.shell import quote
from buildkit_ops.inventory import Client

CERT_FILES = ("ca.pem", "cert.pem", "key.pem")


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
