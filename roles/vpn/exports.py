"""What others may use of the vpn role: the tunnel's pieces a client's end shares (its facts, steps, handler and
names) and the configuration's serializer."""
from __future__ import annotations

from buildkit_ops.roles.vpn import conf, tunnel

__all__ = ["conf", "tunnel"]
