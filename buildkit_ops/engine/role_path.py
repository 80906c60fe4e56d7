"""Where roles come from, and in which order they run."""
from __future__ import annotations

import importlib

from buildkit_ops.engine.contract import Role

# The roles, in the order their changes are applied (the firewall lets SSH in before it is enabled; buildkitd
# needs the engine, and detects the emulators when it starts).
ORDER = ["engine", "firewall", "emulation", "buildkitd", "prune", "connections"]


def load(order: list[str] | None = None) -> list[Role]:
    return [importlib.import_module(f"buildkit_ops.roles.{name}").ROLE for name in (order or ORDER)]
