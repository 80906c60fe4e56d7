"""CI runners as clients (`connection: none`): machines the operator cannot reach, whose certificate travels as
CI secrets. add-client issues the certificate and opens the firewall as for any client, then writes, instead of
setting up a builder over SSH, a folder on the operator machine (0700, files 0600):

  ca.pem, cert.pem, key.pem   the three values to store as CI secrets (never printed, in any mode)
  github-actions.yml          a docker/setup-buildx-action step: `driver: remote`, one node per build host in
                              the client's placement order, credentials from the BUILDER_NODE_<i>_AUTH_TLS_*
                              environment variables the action reads (docs.docker.com, "Configuring your
                              GitHub Actions builder", TLS authentication)
  gitlab-ci.yml               a job template whose before_script creates the same builder with
                              `docker buildx create`, from three CI/CD variables of type File

Both snippets are made by serializers (YAML dump, shell quoting): no inventory value can add a line to them."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from buildkit_ops.engine.render import safe_dirname
from buildkit_ops.engine.shell import quote
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.pki import certs as pki

SECRETS = {"ca.pem": "BUILDKIT_OPS_CA", "cert.pem": "BUILDKIT_OPS_CERT", "key.pem": "BUILDKIT_OPS_KEY"}
SETUP_BUILDX = "docker/setup-buildx-action@v3"


class _Dumper(yaml.SafeDumper):
    """Safe YAML with multi-line strings as literal blocks (`append: |`), as people write workflows."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_Dumper.add_representer(str, _str)


def folder(inv: Inventory, client: Client) -> Path:
    return inv.pki_dir / "ci" / safe_dirname(client.name)


def github_actions(nodes: list[dict[str, Any]]) -> str:
    def env(i: int) -> dict[str, str]:
        return {f"BUILDER_NODE_{i}_AUTH_TLS_{part}": f"${{{{ secrets.{SECRETS[f]} }}}}"
                for part, f in (("CACERT", "ca.pem"), ("CERT", "cert.pem"), ("KEY", "key.pem"))}

    first, rest = nodes[0], nodes[1:]
    with_: dict[str, Any] = {"driver": "remote", "endpoint": first["endpoint"]}
    if first["platforms"]:
        with_["platforms"] = first["platforms"]
    with_["driver-opts"] = f"servername={first['servername']}"
    if rest:
        with_["append"] = yaml.safe_dump(
            [{"endpoint": n["endpoint"], **({"platforms": n["platforms"]} if n["platforms"] else {}),
              "driver-opts": [f"servername={n['servername']}"]} for n in rest], sort_keys=False)
    step = {"name": "Set up the buildkit-ops builder", "uses": SETUP_BUILDX, "with": with_,
            "env": {k: v for i in range(len(nodes)) for k, v in env(i).items()}}
    head = ("# GitHub Actions: store ca.pem, cert.pem and key.pem of this folder as the secrets "
            + ", ".join(SECRETS.values()) + ",\n# then use this step before docker/build-push-action.\n")
    return head + yaml.dump([step], Dumper=_Dumper, sort_keys=False, width=1000)


def buildx_commands(client: Client, nodes: list[dict[str, Any]]) -> list[str]:
    """The shell commands that create the client's builder from the three files named by the variables."""
    creds = '"cacert=$BUILDKIT_OPS_CA,cert=$BUILDKIT_OPS_CERT,key=$BUILDKIT_OPS_KEY"'
    b = quote(client.builder)
    out = [f"docker buildx rm {b} >/dev/null 2>&1 || true"]
    for i, n in enumerate(nodes):
        plat = f" --platform {quote(n['platforms'])}" if n["platforms"] else ""
        out.append(f"docker buildx create --name {b}{' --append' if i else ''} --node {quote(n['name'])} "
                   f"--driver remote{plat} --driver-opt {creds}{quote(',servername=' + n['servername'])} "
                   f"{quote(n['endpoint'])}")
    out.append(f"docker buildx use {b}")
    return out


def gitlab_ci(client: Client, nodes: list[dict[str, Any]]) -> str:
    head = ("# GitLab CI: add the CI/CD variables " + ", ".join(SECRETS.values()) + " of type File (Settings >\n"
            "# CI/CD > Variables) holding ca.pem, cert.pem and key.pem of this folder, then extend this template:\n"
            "#   build: {extends: .buildkit-ops, script: [docker buildx build --push -t ... .]}\n")
    return head + yaml.safe_dump({".buildkit-ops": {"before_script": buildx_commands(client, nodes)}},
                                 sort_keys=False, width=1000)


def material(inv: Inventory, client: Client, nodes: list[dict[str, Any]]) -> dict[str, bytes]:
    leaf = pki.client_paths(inv.pki_dir, client.name)
    return {"ca.pem": pki.trust_bundle(inv.pki_dir), "cert.pem": leaf.crt.read_bytes(),
            "key.pem": leaf.key.read_bytes(), "github-actions.yml": github_actions(nodes).encode(),
            "gitlab-ci.yml": gitlab_ci(client, nodes).encode()}


def write(inv: Inventory, client: Client, nodes: list[dict[str, Any]]) -> list[str]:
    """Write the folder (atomically per file, 0600 in a 0700 folder); the names of the files that changed."""
    d = folder(inv, client)
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(d, 0o700)
    changed = []
    for name, content in material(inv, client, nodes).items():
        p = d / name
        if not p.exists() or p.read_bytes() != content or (p.stat().st_mode & 0o777) != 0o600:
            pki.atomic_write(p, content, 0o600)
            changed.append(name)
    return changed


def summary(inv: Inventory, client: Client, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """What automation needs to know (for --json): where the files are and what to name the secrets; never
    their content."""
    d = folder(inv, client)
    return {"folder": str(d), "secrets": {v: str(d / k) for k, v in SECRETS.items()},
            "github_actions": str(d / "github-actions.yml"), "gitlab_ci": str(d / "gitlab-ci.yml"),
            "nodes": [{"endpoint": n["endpoint"], "servername": n["servername"], "platforms": n["platforms"]}
                      for n in nodes]}
