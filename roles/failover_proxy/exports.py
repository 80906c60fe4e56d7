"""What others may use of the failover proxy role: a client's proxy as it renders it (the builder's nodes point at
its listeners, and the builder is recreated when it changes), and how to remove it from a client
(remove-client)."""
from __future__ import annotations

from buildkit_ops.engine.shell import quote
from buildkit_ops.fleet.failover import container_name
from buildkit_ops.inventory import Client
from buildkit_ops.roles.failover_proxy.proxy_config import Proxy, proxy, templates

__all__ = ["Proxy", "proxy", "remove_script", "templates"]


def remove_script(client: Client) -> str:
    return f"docker rm -f {quote(container_name(client))} >/dev/null 2>&1 || true\n"
