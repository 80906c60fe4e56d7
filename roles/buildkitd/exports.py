"""What others may use of the buildkitd role: the names of its container, socket and handler, the query of
running builds, its parsed facts, and its files as rendered for a host (the Kubernetes manifests carry them)."""
from __future__ import annotations

CONTAINER = "buildkitd"
SOCK = "unix:///run/buildkit/buildkitd.sock"
# The handler that recreates buildkitd (drained first): another role notifies it when buildkitd must restart to
# see its change (emulation: a new emulator).
RESTART = "recreate buildkitd"
# Builds whose history record has no completion time are running (`buildctl debug histories --format`).
RUNNING = "{{if .Record}}{{if not .Record.CompletedAt}}running{{end}}{{end}}"

from buildkit_ops.roles.buildkitd.facts import BuildkitdFacts  # noqa: E402  (they use the names above)
from buildkit_ops.roles.buildkitd.files import SOCKET_DIR  # noqa: E402
from buildkit_ops.roles.buildkitd.files import render as render_files  # noqa: E402

__all__ = ["CONTAINER", "SOCK", "SOCKET_DIR", "RESTART", "RUNNING", "BuildkitdFacts", "render_files"]
