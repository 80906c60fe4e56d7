"""What others may use of the tenants role: its parsed facts (status reads each tenant daemon's state and fence)
and its handler's name."""
from __future__ import annotations

from buildkit_ops.roles.tenants import RESTART, TenantsFacts

__all__ = ["RESTART", "TenantsFacts"]
