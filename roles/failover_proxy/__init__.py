"""failover_proxy: on a client with `failover: proxy`, a small HAProxy container that its builder's nodes point at
(127.0.0.1 only); each listener forwards to its build host and, while that host fails its checks, to the next
one serving the same platforms (buildkit_ops/fleet/failover.py decides the listeners, proxy_config.py renders the
configuration). The image is loaded from failover_image_archive when the client lacks it, else pulled; the
container is recreated only when its configuration changed or it does not run."""
from __future__ import annotations

import base64
from dataclasses import dataclass

from buildkit_ops.engine import service
from buildkit_ops.engine.contract import Context, Options, Role, Step
from buildkit_ops.engine.render import FileState
from buildkit_ops.engine.shell import quote
from buildkit_ops.fleet import failover, placement
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.roles.buildx_builder.exports import client_tls
from buildkit_ops.roles.failover_proxy.proxy_config import TLS_SUM, Proxy
from buildkit_ops.roles.failover_proxy.proxy_config import proxy as proxy_for


@dataclass
class ProxyFacts:
    image_id: str = ""           # of failover_image on the client, empty when absent
    state: str = ""              # "true HASH": running, with that configuration
    tls_sum: str = ""            # the sum of the certificate files in it (empty: none)

    def runs(self, proxy: Proxy) -> bool:
        return self.state == f"true {proxy.label}"


def parse(sections: dict[str, str]) -> ProxyFacts:
    return ProxyFacts(sections.get("proxy_image", ""), sections.get("proxy", ""), sections.get("proxy_tls", "").strip())


def _put_files(c: str, files: dict[str, bytes]) -> str:
    """Shell copying the files into container `c` (its name quoted) through mktemp's folder $T."""
    put = ""
    for i, (path, content) in enumerate(files.items()):
        # The files are readable inside the container by HAProxy's user (the official image runs as `haproxy`):
        # on the client, only root and the docker group reach a container's files, and the temporary folder they
        # pass through is mktemp's, 0700.
        put += (f'echo {base64.b64encode(content).decode()} | base64 -d > "$T/{i}"\nchmod 644 "$T/{i}"\n'
                f'docker cp "$T/{i}" {c}:{quote(path)}\n')
    return put


def tls_files(proxy: Proxy) -> dict[str, bytes]:
    return {**proxy.files, TLS_SUM: proxy.tls_sum.encode() + b"\n"} if proxy.files else {}


def new_certificates_script(client: Client, proxy: Proxy) -> str:
    """New certificate files into the running proxy, which reloads gracefully: its new worker checks with them,
    and the connections the old one carries (builds in flight, a CA rotation's among them) go on to their end."""
    c = quote(failover.container_name(client))
    return (f"T=$(mktemp -d)\n{_put_files(c, tls_files(proxy))}rm -rf \"$T\"\n"
            f"docker kill -s USR2 {c} >/dev/null\nsleep 1\n"
            f"if [ \"$(docker inspect --format '{{{{.State.Running}}}}' {c})\" != true ]; then "
            f"docker logs --tail 20 {c} >&2; exit 1; fi\n")


def start_script(client: Client, proxy: Proxy) -> str:
    """(Re)create the proxy container with this configuration, copied in (no bind mount, so it also works with a
    remote or Desktop Docker daemon), restarted with the Docker daemon, and checked to be running. It shares the
    client's network and binds 127.0.0.1 only: published ports of a container on a bridge (`-p 127.0.0.1:...`)
    confine only the publication, and the container's own address stays reachable from other containers and, on
    Docker before 28, from the client's LAN."""
    c = quote(failover.container_name(client))
    put = _put_files(c, {failover.CONFIG_IN_CONTAINER: proxy.config.encode(), **tls_files(proxy)})
    return (f"T=$(mktemp -d)\n"
            f"docker rm -f {c} >/dev/null 2>&1 || true\n"
            f"docker create --name {c} --restart unless-stopped "
            f"--label org.buildkit-ops.proxy-config={proxy.label} --network host "
            f"--entrypoint haproxy {quote(client.failover_image)} -W -db -f {failover.CONFIG_IN_CONTAINER} >/dev/null\n"
            f'{put}rm -rf "$T"\n'
            f"docker start {c} >/dev/null\nsleep 1\n"
            f"if [ \"$(docker inspect --format '{{{{.State.Running}}}}' {c})\" != true ]; then "
            f"docker logs --tail 20 {c} >&2; exit 1; fi\n")


def plan(client: Client, proxy: Proxy, facts: ProxyFacts) -> list[Step]:
    want = service.Image(client.failover_image, client.failover_image_archive)
    steps = [service.image_step("failover_proxy", want, facts.image_id, (), [], quiet=True)]
    title = f"failover proxy {failover.container_name(client)}"
    if facts.runs(proxy):
        steps.append(Step("failover_proxy", title, False, "running, configuration unchanged"))
        if facts.tls_sum != proxy.tls_sum and proxy.files:
            steps.append(Step("failover_proxy", "failover proxy certificates", True,
                              "new certificate files, reloaded gracefully (builds in flight go on)",
                              script=new_certificates_script(client, proxy)))
    else:
        ls = proxy.listeners
        steps.append(Step("failover_proxy", title, True,
                          f"127.0.0.1:{ls[0].port}-{ls[-1].port} -> "
                          + "; ".join(f"{li.name}: " + " then ".join(s.name for s in li.servers) for li in ls),
                          script=start_script(client, proxy)))
    return steps


def removal(client: Client, facts: ProxyFacts) -> list[Step]:
    """A removed client: its proxy container goes (the image stays: it may serve others)."""
    c = failover.container_name(client)
    if not facts.state:
        return [Step("failover_proxy", "proxy", False, "absent")]
    return [Step("failover_proxy", "proxy", True, f"{c} removed",
                 script=f"docker rm -f {quote(c)} >/dev/null 2>&1 || true\n")]


class FailoverProxyRole(Role[Client, Proxy | None, ProxyFacts]):
    name = "failover_proxy"
    targets = "client"

    def applies(self, target: Client) -> bool:
        return target.failover == "proxy"

    def prepare(self, inv: Inventory, target: Client, options: Options) -> Proxy | None:
        """The proxy wanted on the client; None for a removed client."""
        if target.name in options.remove:
            return None
        hosts = placement.placed(target, inv.hosts_for(target), options.platforms)
        proxy = proxy_for(target, hosts, self.templates, client_tls(inv, target))
        assert proxy is not None  # (applies: failover is proxy)
        return proxy

    def fact_env(self, target: Client) -> dict[str, str]:
        return {"BKOPS_PROXY_IMAGE": target.failover_image, "BKOPS_PROXY_CONTAINER": failover.container_name(target)}

    def parse(self, sections: dict[str, str]) -> ProxyFacts:
        return parse(sections)

    def plan(self, ctx: Context[Client, Proxy | None], facts: ProxyFacts,
             files: dict[str, FileState]) -> list[Step]:
        return removal(ctx.target, facts) if ctx.input is None else plan(ctx.target, ctx.input, facts)


ROLE = FailoverProxyRole()
