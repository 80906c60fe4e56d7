"""What others may use of the CI runner role: where a runner's folder is, the names of its CI secrets, what
automation needs to know of it (for --json: paths and secret names, never their content), and the YAML of CI
workflows (also ci-snippet's)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from buildkit_ops.engine.render import safe_dirname
from buildkit_ops.fleet.nodes import Node
from buildkit_ops.inventory import Client, Inventory

SECRETS = {"ca.pem": "BUILDKIT_OPS_CA", "cert.pem": "BUILDKIT_OPS_CERT", "key.pem": "BUILDKIT_OPS_KEY"}
# With a VPN: the runner's tunnel configuration (its private key in it), a fourth secret; its key alone, kept here
VPN_SECRET = ("bkops-vpn.conf", "BUILDKIT_OPS_WIREGUARD")
VPN_KEY = "wireguard.key"


class _Dumper(yaml.SafeDumper):
    """Safe YAML with multi-line strings as literal blocks (`append: |`), as people write workflows."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def workflow_yaml(doc: Any) -> str:
    """A CI workflow's YAML, made by a serializer (safe YAML; multi-line strings as literal blocks, `run: |`):
    no value can add a key or a step."""
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=1000)


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
