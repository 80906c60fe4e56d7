"""ci_runner: a CI runner as a client (`connection: none`), a machine the operator cannot reach, whose certificate
travels as CI secrets. add-client issues the certificate and opens the firewall as for any client; this role
then keeps, instead of a builder, a folder on the operator machine (0700, files 0600, never printed):

  ca.pem, cert.pem, key.pem   the three values to store as the CI secrets BUILDKIT_OPS_CA, _CERT and _KEY
  github-actions.yml          a docker/setup-buildx-action step (snippets.py)
  gitlab-ci.yml               a GitLab CI job template creating the same builder
  bkops-vpn.conf              with a VPN: the runner's WireGuard configuration, to store as BUILDKIT_OPS_WIREGUARD
                              (its key pair made here once, by add-client: wireguard.key); on a developer's
                              macOS or Windows machine, the file the WireGuard app imports
  buildx-builder.sh           the builder's commands for a person at such a machine (the folder copied there)

The folder is this role's target: its files are managed like any host's (checksum, mode, atomic rename), in a
session on this machine."""
from __future__ import annotations

import ipaddress

from buildkit_ops.engine.contract import Context, Options, Role, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.steps import file_steps
from buildkit_ops.fleet.nodes import client_nodes
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.pki import certs
from buildkit_ops.roles.ci_runner.exports import SECRETS, VPN_KEY, VPN_SECRET, folder
from buildkit_ops.roles.ci_runner.snippets import github_actions, gitlab_ci, workstation_script
from buildkit_ops.roles.vpn.exports import conf


def prepare(inv: Inventory, client: Client, options: Options) -> list[File]:
    """The folder's files. Before the client's certificate exists (add-client --check), its files are
    placeholders."""
    ns = client_nodes(inv, client, options.platforms)   # (a CI runner has no failover proxy)
    leaf = certs.client_paths(inv.pki_dir, client.name)
    issued = leaf.crt.exists() and leaf.key.exists()
    secrets = {"ca.pem": certs.trust_bundle(inv.pki_dir) if issued else b"(the CA bundle)\n",
               "cert.pem": leaf.crt.read_bytes() if issued else b"(to be issued)\n",
               "key.pem": leaf.key.read_bytes() if issued else b"(secret)\n"}
    d = folder(inv, client)
    tunnel = vpn_conf(inv, client)
    if tunnel is not None:
        secrets[VPN_SECRET[0]] = tunnel
    vpn = tunnel is not None
    return ([File(str(d / name), content, 0o600, secret=True, owner=None, dir_mode=0o700)
             for name, content in secrets.items()]
            + [File(str(d / "github-actions.yml"), github_actions(ns, vpn).encode(), 0o600, owner=None,
                    dir_mode=0o700),
               File(str(d / "gitlab-ci.yml"), gitlab_ci(client, ns, vpn).encode(), 0o600, owner=None,
                    dir_mode=0o700),
               File(str(d / "buildx-builder.sh"), workstation_script(client, ns, vpn).encode(), 0o600,
                    owner=None, dir_mode=0o700)])


def vpn_conf(inv: Inventory, client: Client) -> bytes | None:
    """With a VPN: the runner's tunnel configuration, its private key in it (made by add-client, kept in the
    folder: before that, a placeholder)."""
    if inv.vpn is None or client.vpn_address is None:
        return None
    try:
        private = (folder(inv, client) / VPN_KEY).read_text().strip()
    except FileNotFoundError:
        return b"(made by add-client)\n"
    peers, _unknown = conf.host_peers(inv, client)
    return conf.render(client.vpn_address, ipaddress.ip_network(inv.vpn.subnet).prefixlen, None, peers,
                       private_key=private)


class CiRunnerRole(Role[Client, list[File], None]):
    name = "ci_runner"
    targets = "client"

    def applies(self, target: Client) -> bool:
        return target.connection == "none"

    def prepare(self, inv: Inventory, target: Client, options: Options) -> list[File]:
        return prepare(inv, target, options)

    def files(self, ctx: Context[Client, list[File]]) -> list[File]:
        return ctx.input

    def plan(self, ctx: Context[Client, list[File]], facts: None, files: dict[str, FileState]) -> list[Step]:
        steps = file_steps("ci_runner", self.managed(ctx), files, [], name=lambda f: f.path.rsplit("/", 1)[1])
        vpn = f"; {VPN_SECRET[0]} as {VPN_SECRET[1]}" if ctx.input and any(
            f.path.endswith("/" + VPN_SECRET[0]) for f in ctx.input) else ""
        app = (f"; a macOS or Windows machine imports {VPN_SECRET[0]} in the WireGuard app and runs "
               f"buildx-builder.sh") if vpn else "; a developer's machine runs buildx-builder.sh"
        return steps + [Step("ci_runner", "CI secrets", False,
                             f"store ca.pem, cert.pem, key.pem as {', '.join(SECRETS.values())}{vpn}; "
                             f"github-actions.yml and gitlab-ci.yml set up the builder{app}")]


ROLE = CiRunnerRole()
