"""What others may use of the buildkitd role: the names of its container, socket and handler, the query of
running builds, its parsed facts, its files as rendered for a host (the Kubernetes manifests carry them), and
the daemons of a host (the fleet's and the tenants': daemons.py) with the drain before a restart."""
from __future__ import annotations

from buildkit_ops.roles.buildkitd.daemons import SOCK, SOCKET_DIR, Daemon, daemons, fleet, of_tenant, tenants

CONTAINER = "buildkitd"
# The handler that recreates buildkitd (drained first): another role notifies it when buildkitd must restart to
# see its change (emulation: a new emulator).
RESTART = "recreate buildkitd"

from buildkit_ops.roles.buildkitd.drain import RUNNING, drain_script, refuse_if_busy, up_script  # noqa: E402
from buildkit_ops.roles.buildkitd.facts import BuildkitdFacts  # noqa: E402  (they use the names above)
from buildkit_ops.roles.buildkitd.files import TEMPLATES, config_hash, wanted_image_id  # noqa: E402
from buildkit_ops.roles.buildkitd.files import render as render_files  # noqa: E402

__all__ = ["CONTAINER", "SOCK", "SOCKET_DIR", "RESTART", "RUNNING", "TEMPLATES", "BuildkitdFacts", "Daemon",
           "config_hash", "daemons", "drain_script", "fleet", "of_tenant", "refuse_if_busy", "render_files", "tenants",
           "up_script", "wanted_image_id"]
