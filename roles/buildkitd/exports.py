"""What others may use of the buildkitd role: the name of its restart handler (another role notifies it when
every daemon must restart to see its change: emulation's new emulator), its parsed
facts, and its files as rendered for a daemon (the Kubernetes manifests carry them). The daemons themselves are
the inventory's (buildkit_ops/inventory/daemons.py)."""
from __future__ import annotations

from buildkit_ops.roles.buildkitd.facts import BuildkitdFacts
from buildkit_ops.roles.buildkitd.files import render as render_files

# The handler that recreates a daemon (drained first).
RESTART = "recreate buildkitd"

__all__ = ["RESTART", "BuildkitdFacts", "render_files"]
