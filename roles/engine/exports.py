"""What others may use of the engine role: its parsed facts (OS, Docker and Compose versions; status reports
them)."""
from __future__ import annotations

from buildkit_ops.roles.engine import EngineFacts

__all__ = ["EngineFacts"]
