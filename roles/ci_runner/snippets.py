"""The CI snippets of a CI runner's folder:

  github-actions.yml          a docker/setup-buildx-action step: `driver: remote`, one node per build host in
                              the client's placement order, credentials from the BUILDER_NODE_<i>_AUTH_TLS_*
                              environment variables the action reads (docs.docker.com, "Configuring your
                              GitHub Actions builder", TLS authentication)
  gitlab-ci.yml               a job template whose before_script creates the same builder with
                              `docker buildx create`, from three CI/CD variables of type File
  buildx-builder.sh           the same commands for a person: a developer's machine the operator cannot reach
                              (macOS, Windows), to which the folder is copied

The snippets are made by serializers (YAML dump, shell quoting): no inventory value can add a line to them."""
from __future__ import annotations

from typing import Any

import yaml

from buildkit_ops.engine.shell import quote
from buildkit_ops.fleet.nodes import Node
from buildkit_ops.inventory import Client
from buildkit_ops.roles.ci_runner.exports import SECRETS, VPN_SECRET, workflow_yaml

SETUP_BUILDX = "docker/setup-buildx-action@v3"


# With a VPN: the tunnel first (the BuildKit port answers inside it only). wg-quick names the interface after the
# file, so the secret is copied to bkops-vpn.conf.
TUNNEL_UP = ("install -m 600 /dev/null /etc/wireguard/bkops-vpn.conf", "wg-quick up bkops-vpn")


def github_actions(nodes: list[Node], vpn: bool = False) -> str:
    def env(i: int) -> dict[str, str]:
        return {f"BUILDER_NODE_{i}_AUTH_TLS_{part}": f"${{{{ secrets.{SECRETS[f]} }}}}"
                for part, f in (("CACERT", "ca.pem"), ("CERT", "cert.pem"), ("KEY", "key.pem"))}

    first, rest = nodes[0], nodes[1:]
    with_: dict[str, Any] = {"driver": "remote", "endpoint": first.endpoint}
    if first.platforms:
        with_["platforms"] = first.platforms
    with_["driver-opts"] = f"servername={first.servername}"
    if rest:
        with_["append"] = yaml.safe_dump(
            [{"endpoint": n.endpoint, **({"platforms": n.platforms} if n.platforms else {}),
              "driver-opts": [f"servername={n.servername}"]} for n in rest], sort_keys=False)
    step = {"name": "Set up the buildkit-ops builder", "uses": SETUP_BUILDX, "with": with_,
            "env": {k: v for i in range(len(nodes)) for k, v in env(i).items()}}
    head = ("# GitHub Actions: store ca.pem, cert.pem and key.pem of this folder as the secrets "
            + ", ".join(SECRETS.values()) + ",\n# then use this step before docker/build-push-action.\n")
    steps = [step]
    if vpn:
        head += f"# With the VPN, also {VPN_SECRET[0]} as {VPN_SECRET[1]}: the tunnel comes up first.\n"
        run = ("sudo apt-get install -y -q wireguard-tools\nsudo mkdir -p /etc/wireguard\n"
               f"sudo {TUNNEL_UP[0]}\n"
               "printf '%s\\n' \"$CONF\" | sudo tee /etc/wireguard/bkops-vpn.conf >/dev/null\n"
               f"sudo {TUNNEL_UP[1]}\n")
        steps.insert(0, {"name": "Bring up the buildkit-ops tunnel",
                         "env": {"CONF": f"${{{{ secrets.{VPN_SECRET[1]} }}}}"}, "run": run})
    return head + workflow_yaml(steps)


def buildx_commands(client: Client, nodes: list[Node]) -> list[str]:
    """The shell commands that create the client's builder from the three files named by the variables."""
    creds = '"cacert=$BUILDKIT_OPS_CA,cert=$BUILDKIT_OPS_CERT,key=$BUILDKIT_OPS_KEY"'
    b = quote(client.builder)
    out = [f"docker buildx rm {b} >/dev/null 2>&1 || true"]
    for i, n in enumerate(nodes):
        plat = f" --platform {quote(n.platforms)}" if n.platforms else ""
        out.append(f"docker buildx create --name {b}{' --append' if i else ''} --node {quote(n.name)} "
                   f"--driver remote{plat} --driver-opt {creds}{quote(',servername=' + n.servername)} "
                   f"{quote(n.endpoint)}")
    out.append(f"docker buildx use {b}")
    return out


def gitlab_ci(client: Client, nodes: list[Node], vpn: bool = False) -> str:
    head = ("# GitLab CI: add the CI/CD variables " + ", ".join(SECRETS.values()) + " of type File (Settings >\n"
            "# CI/CD > Variables) holding ca.pem, cert.pem and key.pem of this folder, then extend this template:\n"
            "#   build: {extends: .buildkit-ops, script: [docker buildx build --push -t ... .]}\n")
    tunnel = []
    if vpn:
        head += (f"# With the VPN, also {VPN_SECRET[1]} (type File) holding {VPN_SECRET[0]}, and a runner that may "
                 f"create a network interface (wireguard-tools installed): the tunnel comes up first.\n")
        tunnel = ["mkdir -p /etc/wireguard", TUNNEL_UP[0],
                  f'cat "${VPN_SECRET[1]}" > /etc/wireguard/bkops-vpn.conf', TUNNEL_UP[1]]
    return head + yaml.safe_dump({".buildkit-ops": {"before_script": tunnel + buildx_commands(client, nodes)}},
                                 sort_keys=False, width=1000)


def workstation_script(client: Client, nodes: list[Node], vpn: bool = False) -> str:
    """A developer machine this tool cannot set up (macOS, Windows: `connection: none`) gets the folder and runs
    this in it (Windows: in Git Bash or WSL). With the VPN, the tunnel is the WireGuard app's: it imports
    bkops-vpn.conf (its private key is in it, so the copy on the operator machine goes once imported)."""
    head = ["#!/bin/sh", f"# buildkit-ops: the builder {client.builder} of {client.name}, made from this folder's "
            "ca.pem, cert.pem and key.pem.", "# Run it in this folder on the developer's machine: sh buildx-builder.sh"]
    if vpn:
        head += [f"# First import {VPN_SECRET[0]} in the WireGuard app (macOS: the App Store's WireGuard; Windows:",
                 "# wireguard.com/install) with \"Import tunnel(s) from file\", and activate the tunnel."]
    env = [f'{var}="$PWD/{name}"' for name, var in SECRETS.items()]
    return "\n".join([*head, "set -e", 'cd "$(dirname "$0")"', *env, *buildx_commands(client, nodes)]) + "\n"
