"""What others may use of the failover proxy role: how to remove it from a client (remove-client)."""
from __future__ import annotations

from buildkit_ops.engine.shell import quote
from buildkit_ops.fleet.failover import container_name
from buildkit_ops.inventory import Client


def remove_script(client: Client) -> str:
    return f"docker rm -f {quote(container_name(client))} >/dev/null 2>&1 || true\n"
