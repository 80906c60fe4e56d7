"""The pod of one daemon's StatefulSet in the Kubernetes manifests (flows/kubernetes.py): buildkitd, the gateway
sidecar in front of it on their shared socket, and the volumes they mount. Pure data: no value becomes structure."""
from __future__ import annotations

from typing import Any

from buildkit_ops.insights.daemon_queries import running_builds
from buildkit_ops.inventory import BuildKit
from buildkit_ops.inventory.daemons import SOCK


def drain_command(wait: int) -> list[str]:
    """preStop: wait (at most `wait` seconds) until no build runs, as the recreate handler does."""
    script = (f"end=$(( $(date +%s) + {int(wait)} )); while [ \"$(date +%s)\" -lt \"$end\" ]; do "
              f"[ \"$({running_builds(f'buildctl --addr {SOCK}')})\" = 0 ] && exit 0; "
              f"sleep 1; done")
    return ["/bin/sh", "-c", script]


def buildkitd_container(bk: BuildKit, wait: int, cpu: str, memory: str) -> dict[str, Any]:
    answers = {"exec": {"command": ["buildctl", "--addr", SOCK, "debug", "workers"]}}
    return {
        "name": "buildkitd", "image": bk.image, "imagePullPolicy": "Always",
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
            *({"name": "config", "mountPath": f"/etc/buildkit/{name}", "subPath": name, "readOnly": True}
              for name in ("buildkitd.toml", "entrypoint.sh", "fence.sh")),
            {"name": "socket", "mountPath": "/run/buildkit"},
            {"name": "registries", "mountPath": "/etc/buildkit/registries", "readOnly": True}]}


def gateway_container(bk: BuildKit) -> dict[str, Any]:
    return {
        "name": "gateway", "image": bk.gateway_image, "imagePullPolicy": "Always",
        "command": ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"],
        # root for buildkitd's socket, and nothing else: no capability, no escalation, a read-only filesystem
        "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "ports": [{"name": "buildkit", "containerPort": bk.port}],
        "readinessProbe": {"tcpSocket": {"port": bk.port}, "periodSeconds": 10},
        "livenessProbe": {"tcpSocket": {"port": bk.port}, "periodSeconds": 30, "failureThreshold": 6},
        "volumeMounts": [{"name": "gateway", "mountPath": "/usr/local/etc/haproxy", "readOnly": True},
                         {"name": "tls", "mountPath": "/etc/gateway/tls", "readOnly": True},
                         {"name": "socket", "mountPath": "/run/buildkit"}]}


def volumes(config: str, secret: str, registries: str, gateway_config: list[str],
            registry_files: dict[str, str]) -> list[dict[str, Any]]:
    """The pod's volumes: the daemon's ConfigMap and Secret, the shared registries' ConfigMap (`registry_files`:
    its key -> the file's path under /etc/buildkit/registries), the socket between the two containers (in
    memory)."""
    return [
        {"name": "config", "configMap": {"name": config}},
        {"name": "socket", "emptyDir": {"medium": "Memory"}},
        {"name": "gateway", "projected": {"defaultMode": 0o400, "sources": [
            {"configMap": {"name": config, "items": [{"key": k, "path": k} for k in gateway_config]}},
            {"secret": {"name": secret, "items": [{"key": "server.pem", "path": "server.pem"}]}}]}},
        {"name": "tls", "secret": {"secretName": secret, "defaultMode": 0o400}},
        {"name": "registries", "configMap": {
            "name": registries,
            "items": [{"key": k, "path": path} for k, path in registry_files.items()]}}]


def pod_template(labels: dict[str, str], arch: str, wait: int, containers: list[dict[str, Any]],
                 pod_volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"labels": labels},
            "spec": {"nodeSelector": {"kubernetes.io/arch": arch},
                     "terminationGracePeriodSeconds": wait + 30,
                     # buildkitd never talks to the Kubernetes API: no token to steal from a pod
                     "automountServiceAccountToken": False,
                     # for every container that is not privileged (a privileged one runs unconfined)
                     "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": containers,
                     "volumes": pod_volumes}}
