"""Past one fleet, on paper: the Kubernetes manifests of a BuildKit StatefulSet that buildkit-ops would
serve (docs/scale-out.md), rendered from the same inventory settings and the same role code as a host.

One StatefulSet per platform (a node pool of that architecture), each pod with a PersistentVolumeClaim for
the cache, behind a headless Service so that pods have stable DNS names; the rendered `buildkitd.toml`,
`entrypoint.sh` and `fence.sh` (the build-step fence) and the gateway's files as a ConfigMap, the gateway
as a sidecar on the pod's shared socket; a server certificate from our CA
naming every pod, the Service and the fleet, as a Secret; a PodDisruptionBudget; a NetworkPolicy (in: the
clients only; out: no link-local); guaranteed CPU and memory, liveness and readiness probes, no service
account token, and a preStop hook that waits for running builds as the recreate handler does. Every
manifest is a data structure dumped by the YAML serializer: no value can add a key. No cluster is available
where this was written: the manifests are parsed, validated against Kubernetes' schemas and scanned, never
applied."""
from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from buildkit_ops.errors import BkopsError
from buildkit_ops.insights.daemon_queries import running_builds
from buildkit_ops.inventory import BuildHost, Inventory
from buildkit_ops.inventory.daemons import SOCK
from buildkit_ops.inventory.model import FLEET_NAME
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import client_records
from buildkit_ops.pki import crl as crls
from buildkit_ops.roles.buildkitd.exports import render_files
from buildkit_ops.roles.gateway.exports import client_limits, client_roles
from buildkit_ops.roles.gateway.exports import render_files as gateway_files


class K8sError(BkopsError):
    pass


def names(namespace: str, platform: str, replicas: int) -> dict[str, Any]:
    arch = platform.split("/")[1]
    base = f"buildkitd-{arch}"
    return {"arch": arch, "name": base, "service": f"{base}.{namespace}.svc",
            "pods": [f"{base}-{i}.{base}.{namespace}.svc" for i in range(replicas)]}


def drain_command(wait: int) -> list[str]:
    """preStop: wait (at most `wait` seconds) until no build runs, as the recreate handler does."""
    script = (f"end=$(( $(date +%s) + {int(wait)} )); while [ \"$(date +%s)\" -lt \"$end\" ]; do "
              f"[ \"$({running_builds(f'buildctl --addr {SOCK}')})\" = 0 ] && exit 0; "
              f"sleep 1; done")
    return ["/bin/sh", "-c", script]


# What a build step may not reach, like the fence on a VM: link-local (cloud metadata services) always; and by
# default the private ranges a cluster's pods, services and nodes live in (k8s-manifests --deny-egress narrows or
# widens it, e.g. to the cluster's own pod and service CIDRs when its registry is in a private range).
ALWAYS_DENIED = ("169.254.0.0/16", "fe80::/10")
CLUSTER_RANGES = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")


def network_policy(inv: Inventory, name: str, meta: dict[str, Any], port: int,
                   deny: tuple[str, ...] = CLUSTER_RANGES) -> dict[str, Any]:
    """In: the BuildKit port from the inventory's client addresses only (none: nobody). Out: anything but the
    link-local ranges and `deny` (the cluster's own ranges), as the build-step fence does on a host."""
    sources = sorted({c.address if "/" in c.address else f"{c.address}/{128 if ':' in c.address else 32}"
                      for c in inv.clients.values()})
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
    """The manifests, in apply order. `like`: the build host whose buildkit settings the pods take."""
    if inv.tenants:
        # one StatefulSet serves every client here: a tenant's clients would share the fleet's daemon and its
        # cache, and a tenant's admin could prune everyone's
        raise K8sError(f"{inv.file}: all.vars.tenants ({', '.join(sorted(inv.tenants))}): k8s-manifests renders one "
                       f"daemon, the fleet's, and a tenant's clients would share it and its cache; render from an "
                       f"inventory without tenants (their daemons run on build hosts: `invoke provision`)")
    n = names(namespace, platform, replicas)
    ca = pki.load_ca(inv.pki_dir)
    if ca is None:
        raise K8sError(f"there is no CA in {inv.pki_dir} yet: run `invoke provision` first")
    sans = [*n["pods"], n["service"], FLEET_NAME]
    leaf = pki.Leaf(inv.pki_dir / "k8s" / f"{n['name']}.crt", inv.pki_dir / "k8s" / f"{n['name']}.key")
    pki.ensure_leaf(leaf, pki.signing_ca(inv.pki_dir, "server") or ca, n["name"], inv.cert_days,
                    inv.cert_renew_days, sans)
    tls = {"ca.crt": pki.trust_bundle(inv.pki_dir), "server.crt": leaf.crt.read_bytes(),
           "server.key": leaf.key.read_bytes()}
    # the files a host would get, for a pod: same settings; the host's own paths become mounts below
    host = replace(like, name=n["name"], buildkit=replace(like.buildkit, data_dir="/etc/buildkit"))
    files = {Path(f.path).relative_to("/etc/buildkit").as_posix(): f.content
             for f in render_files(host)}
    # the gateway as a sidecar: the same haproxy.cfg, client map and CRL as on a host
    made = crls.current(inv.pki_dir, client_records.revoked(inv))
    gw = {Path(f.path).name: f.content for f in gateway_files(host, tls, made.pem if made else b"", client_roles(inv),
                                                               client_limits(inv), "/run/buildkit")}
    # what the sidecar reads from its config folder: all but the compose file (no Compose in a pod), the key
    # (in the Secret) and the TLS files (their own mount)
    gw_config = sorted(k for k in gw if k.endswith((".cfg", ".map", ".pem", ".http", ".lua")) and k != "server.pem")
    labels = {"app.kubernetes.io/name": "buildkitd", "app.kubernetes.io/managed-by": "buildkit-ops",
              "buildkit-ops/platform": n["arch"]}
    meta = {"namespace": namespace, "labels": labels}
    registry_files = {k: v for k, v in files.items() if k.startswith("registries/")}

    config: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{n['name']}-config", **meta},
        "data": {**{name: files[name].decode() for name in ("buildkitd.toml", "entrypoint.sh", "fence.sh")},
                 **{name: gw[name].decode() for name in gw_config}}}
    secret: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": {"name": f"{n['name']}-tls", **meta},
        "data": {k: base64.b64encode(v).decode() for k, v in (("ca.crt", tls["ca.crt"]), ("server.crt",
                 tls["server.crt"]), ("server.pem", gw["server.pem"]))}}
    registries: dict[str, Any] = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{n['name']}-registries", **meta},
        "data": {k.replace("/", "__"): v.decode() for k, v in registry_files.items()}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": n["name"], **meta},
               "spec": {"clusterIP": "None", "selector": labels,
                        "ports": [{"name": "buildkit", "port": like.buildkit.port,
                                   "targetPort": like.buildkit.port}]}}
    pdb = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": n["name"], **meta},
           "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels}}}
    answers = {"exec": {"command": ["buildctl", "--addr", SOCK, "debug", "workers"]}}
    container = {
        "name": "buildkitd", "image": like.buildkit.image, "imagePullPolicy": "Always",
        "command": ["/bin/sh", "/etc/buildkit/entrypoint.sh"],
        # privileged: the OCI worker's sandboxes and the build-step fence need it (docs/scale-out.md says what
        # each scanner finding left open means, and why rootless BuildKit is not the default)
        "securityContext": {"privileged": True},
        # requests = limits: a guaranteed share of the node, so that builds are not the first evicted
        "resources": {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}},
        "readinessProbe": {**answers, "periodSeconds": 10},
        # restarted only when it stops answering for 3 minutes: a busy buildkitd answers slowly, not never
        "livenessProbe": {**answers, "periodSeconds": 30, "timeoutSeconds": 10, "failureThreshold": 6},
        "lifecycle": {"preStop": {"exec": {"command": drain_command(wait)}}},
        "volumeMounts": [
            {"name": "cache", "mountPath": "/var/lib/buildkit"},
            {"name": "config", "mountPath": "/etc/buildkit/buildkitd.toml", "subPath": "buildkitd.toml",
             "readOnly": True},
            *({"name": "config", "mountPath": f"/etc/buildkit/{name}", "subPath": name, "readOnly": True}
              for name in ("entrypoint.sh", "fence.sh")),
            {"name": "socket", "mountPath": "/run/buildkit"},
            {"name": "registries", "mountPath": "/etc/buildkit/registries", "readOnly": True}]}
    gateway = {
        "name": "gateway", "image": like.buildkit.gateway_image, "imagePullPolicy": "Always",
        "command": ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
        # root for buildkitd's socket, and nothing else: no capability, no escalation, a read-only filesystem
        "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "ports": [{"name": "buildkit", "containerPort": like.buildkit.port}],
        "readinessProbe": {"tcpSocket": {"port": like.buildkit.port}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": like.buildkit.port}, "periodSeconds": 30, "failureThreshold": 6},
        "volumeMounts": [{"name": "gateway", "mountPath": "/usr/local/etc/haproxy", "readOnly": True},
                         {"name": "tls", "mountPath": "/etc/gateway/tls", "readOnly": True},
                         {"name": "socket", "mountPath": "/run/buildkit"}]}
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": n["name"], **meta},
        "spec": {
            "serviceName": n["name"], "replicas": replicas, "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"nodeSelector": {"kubernetes.io/arch": n["arch"]},
                         "terminationGracePeriodSeconds": wait + 30,
                         # buildkitd never talks to the Kubernetes API: no token to steal from a pod
                         "automountServiceAccountToken": False,
                         # for every container that is not privileged (a privileged one runs unconfined)
                         "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                         "containers": [container, gateway],
                         "volumes": [
                             {"name": "config", "configMap": {"name": config["metadata"]["name"]}},
                             {"name": "socket", "emptyDir": {"medium": "Memory"}},
                             {"name": "gateway", "projected": {"defaultMode": 0o400, "sources": [
                                 {"configMap": {"name": config["metadata"]["name"], "items": [
                                     {"key": k, "path": k} for k in gw_config]}},
                                 {"secret": {"name": secret["metadata"]["name"],
                                             "items": [{"key": "server.pem", "path": "server.pem"}]}}]}},
                             {"name": "tls", "secret": {"secretName": secret["metadata"]["name"],
                                                        "defaultMode": 0o400}},
                             {"name": "registries", "configMap": {
                                 "name": registries["metadata"]["name"],
                                 "items": [{"key": k.replace("/", "__"), "path": k.removeprefix("registries/")}
                                           for k in registry_files]}}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "cache"},
                                      "spec": {"accessModes": ["ReadWriteOnce"],
                                               "resources": {"requests": {"storage": storage}}}}]}}
    policy = network_policy(inv, n["name"], meta, like.buildkit.port, deny_egress)
    return [config, registries, secret, service, pdb, policy, statefulset]


def dump(docs: list[dict[str, Any]]) -> str:
    return "".join("---\n" + yaml.safe_dump(d, sort_keys=False, width=1000) for d in docs)
