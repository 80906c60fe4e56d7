"""buildx_builder: on a client machine (over SSH, or this one), a `docker buildx` remote builder with one node per
build host, its home first (buildkit_ops/fleet/placement.py), each node declaring the platforms no earlier node
declares, with the client's own certificate; or, with a failover proxy, one node per proxy listener checking
the fleet's name in the server certificates. The certificates go to the client's docker config folder (key
0600); the builder is recreated only when its nodes, the certificates or the default changed (a state hash kept
beside them). verify: `buildx inspect --bootstrap` and a real build."""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from buildkit_ops.engine.contract import Context, HandlerFailed, Options, PlanError, Role, Session, Step
from buildkit_ops.engine.render import FileState, safe_dirname
from buildkit_ops.engine.shell import quote
from buildkit_ops.fleet import placement
from buildkit_ops.fleet.nodes import Node, builder_nodes
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.roles.buildx_builder.exports import CERT_FILES, client_tls, folder_script, parse_nodes_status
from buildkit_ops.roles.buildx_builder.removal import remove_script
from buildkit_ops.roles.failover_proxy.exports import proxy as failover_proxy
from buildkit_ops.roles.failover_proxy.exports import templates as proxy_templates


@dataclass(frozen=True)
class BuilderInput:
    nodes: list[Node]
    files: dict[str, bytes]  # ca.pem, cert.pem, key.pem
    state: str               # hash of what the builder is made of: recreated when it changes
    absent: bool = False     # the client was removed (remove-client): its builder and certificates go


@dataclass
class BuilderFacts:
    docker_config: str = ""
    buildx: str = ""
    trap: str = ""
    state: str = ""
    certsums: str = ""
    present: bool = False


def parse(sections: dict[str, str]) -> BuilderFacts:
    return BuilderFacts(sections.get("docker_config", ""), sections.get("buildx", ""), sections.get("trap", ""),
                        sections.get("state", ""), sections.get("certsums", ""), sections.get("builder") == "present")


def prepare(inv: Inventory, client: Client, options: Options) -> BuilderInput:
    """Before the client's certificate exists (add-client's check of the machine), its files are placeholders."""
    if client.name in options.remove:
        return BuilderInput([], {}, "", absent=True)
    hosts = placement.placed(client, inv.hosts_for(client), options.platforms)
    tls = client_tls(inv, client)
    proxy = failover_proxy(client, hosts, proxy_templates(inv), tls)
    ns = builder_nodes(client, hosts)
    files = tls or {n: b"(to be issued)\n" for n in CERT_FILES}
    spec = json.dumps([[n.__dict__ for n in ns], client.default_builder, proxy.config if proxy else None],
                      sort_keys=True)
    return BuilderInput(ns, files, hashlib.sha256(spec.encode()).hexdigest()[:16])


def file_sums(files: dict[str, bytes]) -> str:
    return "\n".join(hashlib.sha256(files[n]).hexdigest() for n in CERT_FILES)


def bootstrap_script(client: Client, want: BuilderInput) -> str:
    """Write the certificates (atomically, key 0600) and (re)create the builder. Every value is a quoted word or a
    shell variable holding one."""
    s = folder_script(client) + 'mkdir -p "$F"\nchmod 700 "$D/buildkit-ops" "$F"\n'
    for name in CERT_FILES:
        b64 = base64.b64encode(want.files[name]).decode()
        mode = "600" if name == "key.pem" else "644"
        s += (f'(umask 077; echo {b64} | base64 -d > "$F/{name}.tmp")\n'
              f'chmod {mode} "$F/{name}.tmp" && mv -f "$F/{name}.tmp" "$F/{name}"\n')
    s += 'docker buildx rm "$B" >/dev/null 2>&1 || true\n'
    for i, n in enumerate(want.nodes):
        plat = f"--platform {quote(n.platforms)} " if n.platforms else ""
        s += (f'S={quote(n.servername)}\n'
              f'docker buildx create --name "$B" {"--append " if i else ""}--node {quote(n.name)} --driver remote '
              f'{plat}--driver-opt "cacert=$F/ca.pem,cert=$F/cert.pem,key=$F/key.pem,servername=$S" '
              f'{quote(n.endpoint)} >/dev/null\n')
    if client.default_builder:
        s += 'docker buildx use --default "$B"\n'
    return s + f'echo {quote(want.state)} > "$F/state"\n'


def verify_script(client: Client) -> str:
    b = quote(client.builder)
    return (f"set -e\ndocker buildx inspect --bootstrap {b}\nT=$(mktemp)\n"
            f"if ! printf 'FROM scratch\\nLABEL org.buildkit-ops.check=1\\n' | "
            f"docker buildx build --builder {b} --progress plain - >\"$T\" 2>&1; then "
            f"tail -15 \"$T\" >&2; rm -f \"$T\"; exit 1; fi\nrm -f \"$T\"\n")


class NoBuildx(PlanError):
    pass


def removal(client: Client, facts: BuilderFacts) -> list[Step]:
    """A removed client: its builder and its folder of certificates go (the key with them)."""
    title = f"builder {client.builder}"
    if not facts.present and not facts.state and not facts.certsums.strip():
        return [Step("buildx_builder", title, False, "absent")]
    return [Step("buildx_builder", title, True, f"removed, with its certificates ({facts.docker_config}/buildkit-ops/"
                 f"{safe_dirname(client.builder)})", script=remove_script(client))]


def plan(client: Client, want: BuilderInput, facts: BuilderFacts) -> list[Step]:
    if want.absent:
        return removal(client, facts)
    if not facts.buildx:
        raise NoBuildx(f"{client.name}: `docker buildx` is not installed there; install the docker CLI and the buildx "
                       f"plugin (Debian: docker.io and docker-buildx), then re-run")
    if facts.trap:
        t = facts.trap
        raise PlanError(f"{client.name}: {t} exists; buildx applies it to every new builder and the remote driver "
                        f"refuses it (\"setting config file is not supported for remote driver\"). Move it aside "
                        f"(mv {t} {t}.off), re-run add-client, then put it back: existing builders keep working")
    endpoints = ", ".join(n.endpoint for n in want.nodes)
    steps = [Step("buildx_builder", "docker buildx", False, facts.buildx)]
    title = f"builder {client.builder}"
    if facts.state == want.state and facts.present and facts.certsums == file_sums(want.files):
        return steps + [Step("buildx_builder", title, False, f"{len(want.nodes)} node(s): {endpoints}")]
    return steps + [Step("buildx_builder", title, True,
                         f"certificates in {facts.docker_config}/buildkit-ops/{safe_dirname(client.builder)} (key "
                         f"0600); {len(want.nodes)} node(s): {endpoints}",
                         script=bootstrap_script(client, want), sensitive=True)]


class BuildxBuilderRole(Role[Client, BuilderInput, BuilderFacts]):
    name = "buildx_builder"
    targets = "client"
    verify_title = "buildx inspect --bootstrap and a build"

    def applies(self, target: Client) -> bool:
        return target.connection != "none"

    def prepare(self, inv: Inventory, target: Client, options: Options) -> BuilderInput:
        return prepare(inv, target, options)

    def fact_env(self, target: Client) -> dict[str, str]:
        return {"BKOPS_BUILDER": target.builder, "BKOPS_DIR": safe_dirname(target.builder)}

    def parse(self, sections: dict[str, str]) -> BuilderFacts:
        return parse(sections)

    def plan(self, ctx: Context[Client, BuilderInput], facts: BuilderFacts,
             files: dict[str, FileState]) -> list[Step]:
        return plan(ctx.target, ctx.input, facts)

    def verify(self, ctx: Context[Client, BuilderInput], facts: BuilderFacts, sess: Session, probe: Any,
               restarted: bool) -> str | None:
        if ctx.input.absent:
            return None
        rc, out, err = sess.run(verify_script(ctx.target))
        statuses = parse_nodes_status(out)
        if rc != 0 or not statuses or any(s != "running" for _, s in statuses):
            raise HandlerFailed(f"{ctx.target.name}: the builder does not answer: {(err or out).strip()[-600:]}\n"
                                f"  check from there: docker buildx inspect --bootstrap {ctx.target.builder}")
        return ", ".join(f"{n}: {s}" for n, s in statuses)


ROLE = BuildxBuilderRole()
