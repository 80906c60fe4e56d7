"""What a daemon says of itself, asked one way wherever it is needed (`ctl`: buildctl against the daemon, from the
host `docker exec CONTAINER buildctl --addr SOCK`, in a pod `buildctl --addr SOCK`): its cache (status,
cache-prune, remove-tenant), how many builds it runs (the drain before a restart, a pod's preStop), and whether
it answers (a restart waits for it)."""
from __future__ import annotations

# Builds whose history record has no completion time are running (`buildctl debug histories --format`).
RUNNING = "{{if .Record}}{{if not .Record.CompletedAt}}running{{end}}{{end}}"


def disk_usage(ctl: str) -> str:
    """Its cache records, one JSON object a line (insights/usage.py reads them)."""
    return f"{ctl} du --format '{{{{json .}}}}'"


def running_builds(ctl: str) -> str:
    """How many builds it runs now (0 when it does not answer)."""
    return f"{ctl} debug histories --format '{RUNNING}' 2>/dev/null | grep -c running"


def answers(ctl: str) -> str:
    """Succeeds when it answers on its socket."""
    return f"{ctl} debug workers >/dev/null 2>&1"
