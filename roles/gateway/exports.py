"""What others may use of the gateway role: its container, handler, where buildkitd's socket is shared, and the
audit trail's reader."""
from __future__ import annotations

CONTAINER = "buildkit-gateway"
# The handler that starts the gateway or reloads it gracefully (new files: certificates, CRL, clients); builds in
# flight keep their connections to the old worker.
RELOAD = "reload gateway"
# The handler that ends the open connections of revoked certificates after a CRL change (no other client's).
CUT = "end revoked connections"
from buildkit_ops.inventory.daemons import SOCKET_DIR  # noqa: E402  (the daemons' sockets' folder)
from buildkit_ops.roles.gateway.audit import SOLVE, SOLVE_STARTED, AuditLine, build_owners, parse_audit  # noqa: E402
from buildkit_ops.roles.gateway.facts import GatewayFacts  # noqa: E402
from buildkit_ops.roles.gateway.files import Routes, client_limits, client_roles  # noqa: E402
from buildkit_ops.roles.gateway.files import render as render_files  # noqa: E402
from buildkit_ops.roles.gateway.log_window import as_log_text  # noqa: E402
from buildkit_ops.roles.gateway.log_window import script as _window_script  # noqa: E402


def log_window(seconds: int, containing: tuple[str, ...] = (), starting: tuple[str, ...] = (),
               newest: int | None = None) -> str:
    """Shell printing the gateway's log lines of the last `seconds`, newest first, read from the end of its
    files and no further (`as_log_text` makes them `docker logs --timestamps` text)."""
    return _window_script(CONTAINER, seconds, containing, starting, newest)

__all__ = ["CONTAINER", "CUT", "RELOAD", "SOCKET_DIR", "SOLVE", "SOLVE_STARTED", "AuditLine", "GatewayFacts",
           "Routes", "as_log_text", "client_limits", "build_owners", "client_roles", "log_window", "parse_audit",
           "render_files"]
