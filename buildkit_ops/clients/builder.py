"""The client machine: reaching it (this machine, or another over SSH), checking it can hold a remote builder,
and setting up its `docker buildx` builder (one node per build host, its certificates, its failover proxy) or,
for a CI runner, writing its secrets and snippets instead; and removing them again. The operator's records of
clients (revocations, list-clients rows) are in client_records.py."""
from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from buildkit_ops.clients import ci_runner as ci_clients
from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.render import safe_dirname
from buildkit_ops.engine.session import gzip_chunks
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.ssh import RemoteError, connect, exec_command
from buildkit_ops.fleet import failover, placement
from buildkit_ops.inventory import Client, Inventory
from buildkit_ops.inventory.model import FLEET_NAME
from buildkit_ops.pki import certs as pki
from buildkit_ops.report.output import HostResult, Reporter

CERT_FILES = ("ca.pem", "cert.pem", "key.pem")


class ClientError(Exception):
    pass


# ------------------------------------------------------------------ the client machine

class ClientSession:
    """Runs shell scripts on the client as its user: locally, or over SSH (host key checked)."""

    def __init__(self, client: Client):
        self.client = client
        self.conn = None
        if client.connection == "ssh":
            self.conn = connect(client.name, client.ssh_address, client.ssh_user, client.ssh_port, client.ssh_key,
                                client.known_hosts, client.connect_timeout)

    def run(self, script: str, timeout: float = 300, upload: str | None = None) -> tuple[int, str, str]:
        """Run `script`; with `upload`, the script is an argument and that file (gzip-compressed) its stdin."""
        if self.conn is None:
            if upload:
                with open(upload, "rb") as f:
                    up = subprocess.run(["sh", "-c", script], stdin=f, capture_output=True, timeout=timeout)
                return up.returncode, up.stdout.decode(errors="replace"), up.stderr.decode(errors="replace")
            r = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, timeout=timeout)
            return r.returncode, r.stdout, r.stderr
        if upload:
            return exec_command(self.conn, f"sh -c {quote(script)}", gzip_chunks(upload), self.client.connect_timeout,
                                timeout)
        return exec_command(self.conn, "sh -s", [script.encode()], self.client.connect_timeout, timeout)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def builder_nodes(inv: Inventory, client: Client, platforms: dict[str, str],
                  proxy: failover.Proxy | None = None) -> list[dict[str, Any]]:
    """The buildx nodes the client's builder must have: one per build host, its home first and then the others
    in placement order. A host serves the inventory's `platforms`, else what its buildkitd reported.

    buildx lets only one node of a builder declare a platform: appending a node removes its platforms from every
    other node (docker/buildx store/nodegroup.go, `validateDuplicates`). So each platform is declared by the
    first node in the client's order that serves it, which is where buildx sends builds of it; a node left with
    nothing to declare still takes builds of platforms no node declares. With `failover: proxy` each node is a
    listener of the client's failover proxy, and checks the fleet's name in the certificate."""
    hosts = placement.order(client, list(inv.hosts.values()))
    served = [h.platforms if h.platforms else [p for p in platforms.get(h.name, "").split(",") if p] for h in hosts]
    claimed: set[str] = set()
    declared = []
    for plats in served:
        declared.append(",".join(p for p in plats if p not in claimed))
        claimed.update(plats)
    if client.failover == "proxy":
        proxy = proxy or failover.proxy(inv, client, platforms)
        assert proxy is not None
        return [{"name": f"{client.builder}-{li.name}", "endpoint": f"tcp://127.0.0.1:{li.port}",
                 "servername": FLEET_NAME, "platforms": decl}
                for li, decl in zip(proxy.listeners, declared, strict=True)]
    return [{"name": f"{client.builder}-{h.name}", "endpoint": f"tcp://{h.client_address}:{h.buildkit.port}",
             "servername": h.client_address, "platforms": decl}
            for h, decl in zip(hosts, declared, strict=True)]


def wanted(inv: Inventory, client: Client,
           platforms: dict[str, str]) -> tuple[list[dict[str, Any]], failover.Proxy | None, str]:
    """The client's builder nodes, its failover proxy (or None), and the hash of both that the client keeps
    (`state`), so that a builder is recreated only when one of them changed."""
    proxy = failover.proxy(inv, client, platforms)
    nodes = builder_nodes(inv, client, platforms, proxy)
    spec = json.dumps([nodes, client.default_builder, proxy.config if proxy else None], sort_keys=True)
    return nodes, proxy, hashlib.sha256(spec.encode()).hexdigest()[:16]


def file_sums(cert_files: dict[str, bytes]) -> str:
    return "\n".join(hashlib.sha256(cert_files[n]).hexdigest() for n in CERT_FILES)


FACTS = r"""
D=${DOCKER_CONFIG:-$HOME/.docker}
echo @@docker_config; echo "$D"
echo @@buildx; docker buildx version 2>/dev/null || true
BX=${BUILDX_CONFIG:-$D/buildx}
echo @@trap; [ -f "$BX/buildkitd.default.toml" ] && echo "$BX/buildkitd.default.toml" || true
F="$D/buildkit-ops/$DIR"
echo @@state; cat "$F/state" 2>/dev/null || true
echo @@certsums; for f in ca.pem cert.pem key.pem; do sha256sum < "$F/$f" 2>/dev/null | cut -c1-64; done
echo @@builder; docker buildx inspect "$B" >/dev/null 2>&1 && echo present || echo absent
"""


def bootstrap_script(client: Client, nodes: list[dict[str, Any]], files: dict[str, bytes], state: str) -> str:
    """Write the certificates (atomically, key 0600) and (re)create the builder. Every value is a quoted word or
    a shell variable holding one; the files' paths are built from $D (the client's own docker config dir)."""
    s = (f'set -e\nD=${{DOCKER_CONFIG:-$HOME/.docker}}\nB={quote(client.builder)}\n'
         f'F="$D/buildkit-ops/"{quote(safe_dirname(client.builder))}\n'
         'mkdir -p "$F"\nchmod 700 "$D/buildkit-ops" "$F"\n')
    for name in CERT_FILES:
        b64 = base64.b64encode(files[name]).decode()
        mode = "600" if name == "key.pem" else "644"
        s += (f'(umask 077; echo {b64} | base64 -d > "$F/{name}.tmp")\n'
              f'chmod {mode} "$F/{name}.tmp" && mv -f "$F/{name}.tmp" "$F/{name}"\n')
    s += 'docker buildx rm "$B" >/dev/null 2>&1 || true\n'
    for i, n in enumerate(nodes):
        plat = f"--platform {quote(n['platforms'])} " if n["platforms"] else ""
        s += (f'S={quote(n["servername"])}\n'
              f'docker buildx create --name "$B" {"--append " if i else ""}--node {quote(n["name"])} --driver remote '
              f'{plat}--driver-opt "cacert=$F/ca.pem,cert=$F/cert.pem,key=$F/key.pem,servername=$S" '
              f'{quote(n["endpoint"])} >/dev/null\n')
    if client.default_builder:
        s += 'docker buildx use --default "$B"\n'
    s += f'echo {quote(state)} > "$F/state"\n'
    return s


def verify_script(client: Client) -> str:
    b = quote(client.builder)
    return (f"set -e\ndocker buildx inspect --bootstrap {b}\nT=$(mktemp)\n"
            f"if ! printf 'FROM scratch\\nLABEL org.buildkit-ops.check=1\\n' | "
            f"docker buildx build --builder {b} --progress plain - >\"$T\" 2>&1; then "
            f"tail -15 \"$T\" >&2; rm -f \"$T\"; exit 1; fi\nrm -f \"$T\"\n")


def parse_nodes_status(inspect: str) -> list[tuple[str, str]]:
    """(node name, status) from `docker buildx inspect` output."""
    out, name, in_nodes = [], "?", False
    for line in inspect.splitlines():
        key, _, value = line.partition(":")
        if line.startswith("Nodes:"):
            in_nodes = True
        elif in_nodes and key == "Name":
            name = value.strip()
        elif in_nodes and key == "Status":
            out.append((name, value.strip()))
    return out


class NoMachine:
    """The session of a client with `connection: none` (a CI runner): there is nothing to reach."""

    def close(self) -> None:
        pass


def preflight(client: Client) -> tuple[Any, dict[str, str]]:
    """Reach the client and check it can hold a remote builder, before anything is issued or opened."""
    if client.connection == "none":
        return NoMachine(), {}
    try:
        sess = ClientSession(client)
    except RemoteError as e:
        raise ClientError(f"cannot reach {client.name} to set up its builder: {e}") from None
    rc, out, err = sess.run(f"B={quote(client.builder)}\nDIR={quote(safe_dirname(client.builder))}\n"
                            + failover.fact_vars(client) + FACTS + failover.FACTS)
    facts = sections(out)
    problem = None
    if rc != 0:
        problem = f"{client.name}: reading its state failed: {err.strip()[-300:]}"
    elif not facts.get("buildx"):
        problem = (f"{client.name}: `docker buildx` is not installed there; install the docker CLI and the buildx "
                   f"plugin (Debian: docker.io and docker-buildx), then re-run")
    elif facts.get("trap"):
        t = facts["trap"]
        problem = (f"{client.name}: {t} exists; buildx applies it to every new builder and the remote driver "
                   f"refuses it (\"setting config file is not supported for remote driver\"). Move it aside "
                   f"(mv {t} {t}.off), re-run add-client, then put it back: existing builders keep working")
    if problem:
        sess.close()
        raise ClientError(problem)
    return sess, facts


def bootstrap(inv: Inventory, client: Client, sess: ClientSession, facts: dict[str, str],
              platforms: dict[str, str], rep: Reporter, res: HostResult) -> None:
    leaf = pki.client_paths(inv.pki_dir, client.name)
    files = {"ca.pem": pki.trust_bundle(inv.pki_dir), "cert.pem": leaf.crt.read_bytes(),
             "key.pem": leaf.key.read_bytes()}
    nodes, proxy, state = wanted(inv, client, platforms)
    if client.connection == "none":
        changed = ci_clients.write(inv, client, nodes)
        folder = ci_clients.folder(inv, client)
        res.info["ci"] = ci_clients.summary(inv, client, nodes)
        rep.step(res, "ci", f"secrets and snippets in {folder}", "changed" if changed else "ok",
                 (f"written: {', '.join(changed)} (0600); " if changed else "")
                 + f"store ca.pem, cert.pem, key.pem as the CI secrets {', '.join(ci_clients.SECRETS.values())}; "
                   f"github-actions.yml and gitlab-ci.yml set up the builder ({len(nodes)} node(s))")
        return
    rep.step(res, "client", "docker buildx", "ok", facts["buildx"])
    if proxy is not None:
        ensure_proxy(client, sess, facts, proxy, rep, res)
    if (facts.get("state") == state and facts.get("builder") == "present"
            and facts.get("certsums") == file_sums(files)):
        rep.step(res, "client", f"builder {client.builder}", "ok",
                 f"{len(nodes)} node(s): " + ", ".join(n["endpoint"] for n in nodes))
    else:
        rc, out, err = sess.run(bootstrap_script(client, nodes, files, state))
        if rc != 0:
            rep.step(res, "client", f"builder {client.builder}", "failed", err.strip()[-400:])
            raise ClientError(f"{client.name}: creating the builder failed: {err.strip()[-400:]}")
        rep.step(res, "client", f"builder {client.builder}", "changed",
                 f"certificates in {facts.get('docker_config')}/buildkit-ops/{client.builder} (key 0600); "
                 f"{len(nodes)} node(s): " + ", ".join(n["endpoint"] for n in nodes))
    rc, out, err = sess.run(verify_script(client))
    statuses = parse_nodes_status(out)
    if rc != 0 or not statuses or any(s != "running" for _, s in statuses):
        raise ClientError(f"{client.name}: the builder does not answer: {(err or out).strip()[-600:]}\n"
                          f"  check from there: docker buildx inspect --bootstrap {client.builder}")
    rep.step(res, "verify", "buildx inspect --bootstrap and a build", "ok",
             ", ".join(f"{n}: {s}" for n, s in statuses))


def ensure_proxy(client: Client, sess: ClientSession, facts: dict[str, str], proxy: failover.Proxy,
                 rep: Reporter, res: HostResult) -> None:
    """The failover proxy: its image (loaded from failover_image_archive, else pulled), and its container with
    this configuration, recreated only when the configuration changed or it is not running."""
    title = f"failover proxy {failover.container_name(client)}"
    if not facts.get("proxy_image"):
        if client.failover_image_archive:
            rc, out, err = sess.run("docker load -q >/dev/null", upload=client.failover_image_archive)
            how = f"loaded {Path(client.failover_image_archive).name}"
        else:
            rc, out, err = sess.run(failover.pull_script(client))
            how = "pulled"
        if rc != 0:
            rep.step(res, "client", f"image {client.failover_image}", "failed", err.strip()[-400:])
            raise ClientError(f"{client.name}: cannot get the failover proxy's image {client.failover_image}: "
                              f"{err.strip()[-300:]}")
        rep.step(res, "client", f"image {client.failover_image}", "changed", how)
    if failover.up_to_date(facts, proxy.config):
        rep.step(res, "client", title, "ok", "running, configuration unchanged")
        return
    listeners = proxy.listeners
    rc, out, err = sess.run(failover.start_script(client, listeners, proxy.config))
    if rc != 0:
        rep.step(res, "client", title, "failed", err.strip()[-400:])
        raise ClientError(f"{client.name}: the failover proxy does not start: {err.strip()[-400:]}")
    rep.step(res, "client", title, "changed",
             f"127.0.0.1:{listeners[0].port}-{listeners[-1].port} -> "
             + "; ".join(f"{li.name}: " + " then ".join(s.name for s in li.servers) for li in listeners))


def unbootstrap(client: Client, inv: Inventory | None = None) -> str:
    if client.connection == "none":
        if inv is not None:
            folder = ci_clients.folder(inv, client)
            shutil.rmtree(folder, ignore_errors=True)
            return f"CI runner: {folder} removed; delete its CI secrets {', '.join(ci_clients.SECRETS.values())}"
        return "CI runner: delete its CI secrets"
    sess = ClientSession(client)
    try:
        # the builder name is validated (no '/', no '..'), and quoted here anyway
        rc, out, err = sess.run(f'D=${{DOCKER_CONFIG:-$HOME/.docker}}\nB={quote(client.builder)}\n'
                                f'F="$D/buildkit-ops/"{quote(safe_dirname(client.builder))}\n'
                                'docker buildx rm "$B" >/dev/null 2>&1 || true\nrm -rf "$F"\n'
                                + failover.remove_script(client))
        return "builder and certificates removed" if rc == 0 else f"cleanup failed: {err.strip()}"
    finally:
        sess.close()
