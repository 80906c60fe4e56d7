"""Past one fleet, on paper: the Kubernetes manifests that buildkit-ops would serve (docs/scale-out.md), rendered
from the same inventory settings and the same role code as a host.

One StatefulSet per daemon of the `--like` host (the fleet's, and each tenant's placed there), for one platform
(a node pool of that architecture), each pod with a PersistentVolumeClaim for its cache, behind a headless Service
of its own so that pods have stable DNS names; the daemon's rendered `buildkitd.toml`, `entrypoint.sh` and
`fence.sh` (the build-step fence) and the gateway's files as a ConfigMap, the gateway as a sidecar on the pod's
shared socket, routing by the same tenants map as on a host (a client reaching another daemon's pods is refused
with UNAVAILABLE); a server certificate from our CA naming every pod of the daemon, its Service and the fleet, as
a Secret; a PodDisruptionBudget; a NetworkPolicy (in: the daemon's own clients only; out: no link-local, none of
the cluster's ranges); guaranteed CPU and memory, liveness and readiness probes, no service account token, and a
preStop hook that waits for running builds as the recreate handler does. Every manifest is a data structure dumped
by the YAML serializer: no value can add a key. No cluster is available where this was written: the manifests are
parsed, validated against Kubernetes' schemas and scanned, never applied."""
from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from buildkit_ops.errors import BkopsError
from buildkit_ops.flows.kubernetes_pod import buildkitd_container, gateway_container, pod_template, volumes
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.daemons import Daemon, daemons
from buildkit_ops.inventory.model import FLEET_NAME
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import client_records
from buildkit_ops.pki import crl as crls
from buildkit_ops.roles.buildkitd.exports import render_files
from buildkit_ops.roles.gateway.exports import Routes, client_limits, client_roles
from buildkit_ops.roles.gateway.exports import render_files as gateway_files


class K8sError(BkopsError):
    pass


# Where the daemon's socket is in both containers of its pod (the emptyDir they share).
POD_SOCKET = "/run/buildkit/buildkitd.sock"


def names(namespace: str, platform: str, replicas: int, tenant: str | None = None) -> dict[str, Any]:
    """A daemon's names in the cluster: the fleet's `buildkitd-ARCH`, a tenant's `buildkitd-TENANT-ARCH`."""
    arch = platform.split("/")[1]
    base = f"buildkitd-{arch}" if tenant is None else f"buildkitd-{tenant}-{arch}"
    return {"arch": arch, "name": base, "service": f"{base}.{namespace}.svc",
            "pods": [f"{base}-{i}.{base}.{namespace}.svc" for i in range(replicas)]}


def labels(arch: str, tenant: str | None) -> dict[str, str]:
    """A daemon's pods' labels, also its selector: the fleet's are those it always had; a tenant's another name and
    its tenant, so that no selector takes another daemon's pods."""
    base = {"app.kubernetes.io/managed-by": "buildkit-ops", "buildkit-ops/platform": arch}
    if tenant is None:
        return {"app.kubernetes.io/name": "buildkitd", **base}
    return {"app.kubernetes.io/name": "buildkitd-tenant", **base, "buildkit-ops/tenant": tenant}


# What a build step may not reach, like the fence on a VM: link-local (cloud metadata services) always; and by
# default the private ranges a cluster's pods, services and nodes live in (k8s-manifests --deny-egress narrows or
# widens it, e.g. to the cluster's own pod and service CIDRs when its registry is in a private range).
ALWAYS_DENIED = ("169.254.0.0/16", "fe80::/10")
CLUSTER_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


def network_policy(inv: Inventory, name: str, meta: dict[str, Any], port: int,
                   deny: tuple[str, ...] = CLUSTER_RANGES, tenant: str | None = None) -> dict[str, Any]:
    """In: the BuildKit port from the addresses of the daemon's own clients only (the tenant's, or those of no
    tenant for the fleet's; none: nobody). Out: anything but the link-local ranges and `deny` (the cluster's own
    ranges), as the build-step fence does on a host."""
    sources = sorted({c.address if "/" in c.address else f"{c.address}/{128 if ':' in c.address else 32}"
                      for c in inv.clients.values() if c.tenant == tenant})
    denied = sorted(set(ALWAYS_DENIED) | set(deny))
    v4 = [d for d in denied if ":" not in d]
    v6 = [d for d in denied if ":" in d]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, **meta},
            "spec": {"podSelector": {"matchLabels": meta["labels"]}, "policyTypes": ["Ingress", "Egress"],
                     "ingress": [{"from": [{"ipBlock": {"cidr": s}} for s in sources],
                                  "ports": [{"protocol": "TCP", "port": port}]}] if sources else [],
                     "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": v4}},
                                        {"ipBlock": {"cidr": "::/0", "except": v6}}]}]}}


def manifests(inv: Inventory, like: BuildHost, namespace: str, platform: str, replicas: int, storage: str,
              wait: int = 600, cpu: str = "4", memory: str = "8Gi",
              deny_egress: tuple[str, ...] = CLUSTER_RANGES) -> list[dict[str, Any]]:
    """The manifests, in apply order: the registries' CAs (shared), then each daemon's. `like`: the build host
    whose daemons (the fleet's, its tenants') and their settings the cluster takes; a tenant placed on other hosts
    only is served there, and refused here as on any host it is not on."""
    ca = pki.load_ca(inv.pki_dir)
    if ca is None:
        raise K8sError(f"there is no CA in {inv.pki_dir} yet: run `invoke provision` first")
    arch = platform.split("/")[1]
    # the files a host would get, for a pod: same settings; the host's own paths become mounts
    # (a pod listens on its own addresses: a host's private address means nothing there)
    host = replace(like, buildkit=replace(like.buildkit, data_dir="/etc/buildkit"), private_address=None)
    fleet_files = render_files(host)
    registry_files = {f.path.removeprefix("/etc/buildkit/"): f.content for f in fleet_files
                      if f.path.startswith("/etc/buildkit/registries/")}
    registries: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": f"buildkitd-{arch}-registries", "namespace": namespace, "labels": labels(arch, None)},
        "data": {k.replace("/", "__"): v.decode() for k, v in registry_files.items()}}
    shared = Shared(inv, namespace, platform, replicas, storage, wait, cpu, memory, deny_egress,
                    registries["metadata"]["name"],
                    {k.replace("/", "__"): k.removeprefix("registries/") for k in registry_files})
    return [registries, *(doc for d in daemons(inv, host) for doc in daemon_manifests(shared, host, d))]


@dataclass(frozen=True)
class Shared:
    """What every daemon's manifests take alike."""
    inv: Inventory
    namespace: str
    platform: str
    replicas: int
    storage: str
    wait: int
    cpu: str
    memory: str
    deny_egress: tuple[str, ...]
    registries: str                       # the registries' ConfigMap
    registry_files: dict[str, str]        # its key -> the file's path under /etc/buildkit/registries


def gateway_routes(inv: Inventory, daemon: Daemon) -> Routes:
    """The gateway's routes in a daemon's pod: the same tenants map as on a host; its own daemon here, on the pod's
    socket; every other daemon elsewhere (the fleet's too, in a tenant's pod)."""
    clients = {c.name: c.tenant for c in inv.clients.values() if c.tenant}
    if daemon.tenant is None:
        return Routes(clients, {}, tuple(sorted(inv.tenants)))
    return Routes(clients, {daemon.tenant: POD_SOCKET}, tuple(sorted(set(inv.tenants) - {daemon.tenant})),
                  fleet_here=False)


def server_tls(inv: Inventory, n: dict[str, Any]) -> dict[str, bytes]:
    """The daemon's server certificate from our CA (kept in the PKI, renewed like a host's), naming every pod, the
    Service and the fleet."""
    leaf = pki.Leaf(inv.pki_dir / "k8s" / f"{n['name']}.crt", inv.pki_dir / "k8s" / f"{n['name']}.key")
    ca = pki.signing_ca(inv.pki_dir, "server") or pki.load_ca(inv.pki_dir)
    assert ca is not None   # manifests() checked it
    pki.ensure_leaf(leaf, ca, n["name"], inv.cert_days, inv.cert_renew_days, [*n["pods"], n["service"], FLEET_NAME])
    return {"ca.crt": pki.trust_bundle(inv.pki_dir), "server.crt": leaf.crt.read_bytes(),
            "server.key": leaf.key.read_bytes()}


def daemon_manifests(s: Shared, host: BuildHost, daemon: Daemon) -> list[dict[str, Any]]:
    """One daemon's ConfigMap, Secret, Service, PodDisruptionBudget, NetworkPolicy and StatefulSet."""
    inv, bk = s.inv, daemon.buildkit
    n = names(s.namespace, s.platform, s.replicas, daemon.tenant)
    tls = server_tls(inv, n)
    files = {Path(f.path).name: f.content for f in render_files(host, daemon=daemon)}
    # the gateway as a sidecar: the same haproxy.cfg, client map, tenants map and CRL as on a host
    made = crls.current(inv.pki_dir, client_records.revoked(inv))
    gw = {Path(f.path).name: f.content for f in gateway_files(host, tls, made.pem if made else b"", client_roles(inv),
                                                               client_limits(inv), "/run/buildkit",
                                                               tenants=gateway_routes(inv, daemon))}
    # what the sidecar reads from its config folder: all but the compose file (no Compose in a pod), the key
    # (in the Secret) and the TLS files (their own mount)
    gw_config = sorted(k for k in gw if k.endswith((".cfg", ".map", ".pem", ".http", ".lua")) and k != "server.pem")
    selector = labels(n["arch"], daemon.tenant)
    meta = {"namespace": s.namespace, "labels": selector}
    config: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{n['name']}-config", **meta},
        "data": {**{name: files[name].decode() for name in ("buildkitd.toml", "entrypoint.sh", "fence.sh")},
                 **{name: gw[name].decode() for name in gw_config}}}
    secret: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": f"{n['name']}-tls", **meta},
        "data": {k: base64.b64encode(v).decode() for k, v in (("ca.crt", tls["ca.crt"]), ("server.crt",
                 tls["server.crt"]), ("server.pem", gw["server.pem"]))}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": n["name"], **meta},
               "spec": {"clusterIP": "None", "selector": selector,
                        "ports": [{"name": "buildkit", "port": bk.port, "targetPort": bk.port}]}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": n["name"], **meta},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector}}}
    pod_volumes = volumes(config["metadata"]["name"], secret["metadata"]["name"], s.registries, gw_config,
                          s.registry_files)
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": n["name"], **meta},
        "spec": {
            "serviceName": n["name"], "replicas": s.replicas, "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": pod_template(selector, n["arch"], s.wait,
                                     [buildkitd_container(bk, s.wait, s.cpu, s.memory), gateway_container(bk)],
                                     pod_volumes),
            "volumeClaimTemplates": [{"metadata": {"name": "cache"},
                                      "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": s.storage}}}}]}}
    policy = network_policy(inv, n["name"], meta, bk.port, s.deny_egress, daemon.tenant)
    return [config, secret, service, pdb, policy, statefulset]


def dump(docs: list[dict[str, Any]]) -> str:
    return "".join("---\n" + yaml.safe_dump(d, sort_keys=False, width=1000) for d in docs)
