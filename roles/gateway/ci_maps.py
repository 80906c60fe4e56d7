"""The gateway's view of CI jobs (docs/ci.md): each CI rule's key in the maps (the OU of the certificates it
chose), the map of their roles, and where the CI exchange's port sends its requests. A CI job's tenant and limits
go in the same maps as the clients' (files.py), under its rule's key."""
from __future__ import annotations

import re

from buildkit_ops.ci_trust.issuing import unit
from buildkit_ops.ci_trust.rules import Rule, Trust
from buildkit_ops.engine.render import RenderError

# A CI rule's key: `ci:TRUST:RULE` (ci_trust/issuing.py unit()); no client's name has a colon.
CI_KEY = re.compile(r"ci:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?:[0-9]{1,4}")
# The CI issuer's socket as the gateway's container sees it (roles/ci_issuer: in the daemons' socket folder), and
# the exchanges one address may ask for in a minute (a job asks once; a busy CI range shares one address).
SOCKET = "/run/buildkit/ci-issuer.sock"
RATE = 600


def ci_rules(trusts: dict[str, Trust]) -> dict[str, Rule]:
    """Each CI rule by its key in the maps."""
    return {unit(name, i): r for name, t in sorted(trusts.items()) for i, r in enumerate(t.rules)}


def roles_map(trusts: dict[str, Trust]) -> bytes:
    """One `ci:TRUST:RULE role` line per rule (every rule: a CI certificate whose rule is not here is refused)."""
    lines = []
    for key, r in ci_rules(trusts).items():
        if not CI_KEY.fullmatch(key) or r.role not in ("developer", "admin"):
            raise RenderError(f"{key!r} / {r.role!r} cannot be written into the gateway's CI map")
        lines.append(f"{key} {r.role}\n")
    return "".join(lines).encode()
