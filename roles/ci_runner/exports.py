"""What others may use of the CI runner role: where a runner's folder is, the names of its CI secrets, and what
automation needs to know of it (for --json: paths and secret names, never their content)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from buildkit_ops.engine.render import safe_dirname
from buildkit_ops.fleet.nodes import Node
from buildkit_ops.inventory import Client, Inventory

SECRETS = {"ca.pem": "BUILDKIT_OPS_CA", "cert.pem": "BUILDKIT_OPS_CERT", "key.pem": "BUILDKIT_OPS_KEY"}
# With a VPN: the runner's tunnel configuration (its private key in it), a fourth secret; its key alone, kept here
VPN_SECRET = ("bkops-vpn.conf", "BUILDKIT_OPS_WIREGUARD")
VPN_KEY = "wireguard.key"


def folder(inv: Inventory, client: Client) -> Path:
    return inv.pki_dir / "ci" / safe_dirname(client.name)


def summary(inv: Inventory, client: Client, nodes: list[Node]) -> dict[str, Any]:
    d = folder(inv, client)
    secrets = {**SECRETS, **(dict([VPN_SECRET]) if inv.vpn is not None else {})}
    return {"folder": str(d), "secrets": {v: str(d / k) for k, v in secrets.items()},
            "github_actions": str(d / "github-actions.yml"), "gitlab_ci": str(d / "gitlab-ci.yml"),
            "workstation": str(d / "buildx-builder.sh"),
            "nodes": [{"endpoint": n.endpoint, "servername": n.servername, "platforms": n.platforms}
                      for n in nodes]}
