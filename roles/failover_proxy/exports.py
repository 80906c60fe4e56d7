"""What others may use of the failover proxy role: a client's proxy as it renders it (the builder's nodes point at
its listeners, and the builder is recreated when it changes)."""
from __future__ import annotations

from buildkit_ops.roles.failover_proxy.proxy_config import Proxy, proxy, templates

__all__ = ["Proxy", "proxy", "templates"]
