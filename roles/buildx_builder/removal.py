"""A removed client's builder: the builder and its folder of certificates taken off the client machine."""
from __future__ import annotations

from buildkit_ops.inventory import Client
from buildkit_ops.roles.buildx_builder.exports import folder_script


def remove_script(client: Client) -> str:
    return folder_script(client) + 'docker buildx rm "$B" >/dev/null 2>&1 || true\nrm -rf "$F"\n'
