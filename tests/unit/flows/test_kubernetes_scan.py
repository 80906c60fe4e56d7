"""The Kubernetes manifests against the schemas of current Kubernetes releases (kubernetes-validate --strict) and
a security scanner (checkov, offline): every check passes but the ones a rootful, privileged buildkitd cannot
pass, and each of those is justified in docs/scale-out.md. The scanners live in .venv-scan (lab/host-setup.sh
installs them; a missing one fails here, it never skips)."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess

import pytest
from conftest import ROOT
from unit_helpers import inventory_with_tenants

from buildkit_ops.flows import kubernetes
from buildkit_ops.inventory.schema import DEFAULT_IMAGE

SCAN = ROOT / ".venv-scan" / "bin"
KUBERNETES = ["1.32.0", "1.33.0", "1.34.0"]
# what a privileged, rootful buildkitd cannot pass (docs/scale-out.md, "What the scanner leaves open")
JUSTIFIED = ["CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_37", "CKV_K8S_40",
             "CKV_K8S_43"]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("k8s")
    inv = inventory_with_tenants(tmp)   # the fleet's daemon and two tenants' (red, blue) on build1
    host = inv.hosts["build1"]
    host = dataclasses.replace(host, buildkit=dataclasses.replace(host.buildkit, registries={}, image=DEFAULT_IMAGE))
    path = tmp / "buildkitd.k8s.yaml"
    path.write_text(kubernetes.dump(kubernetes.manifests(inv, host, "ci", "linux/arm64", 3, "50Gi")))
    return path


def tool(name: str) -> str:
    path = SCAN / name
    assert path.exists(), f"{path} is missing: run `bash lab/host-setup.sh` (the test command does)"
    return str(path)


@pytest.mark.parametrize("version", KUBERNETES)
def test_the_manifests_are_valid_for_current_kubernetes(manifest, version):
    r = subprocess.run([tool("kubernetes-validate"), "--strict", "-k", version, str(manifest)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count(" passed ") == 1 + 6 * 3, r.stdout     # every document, none left out


def test_checkov_offline_finds_nothing_but_what_docs_justify(manifest):
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "HOME": str(manifest.parent)}
    r = subprocess.run([tool("checkov"), "-f", str(manifest), "--framework", "kubernetes", "--skip-download",
                        "--quiet", "-o", "json", "--skip-check", ",".join(JUSTIFIED)],
                       capture_output=True, text=True, env=env, cwd=manifest.parent)
    report = json.loads(r.stdout)
    failed = [(c["check_id"], c["check_name"]) for c in report.get("results", {}).get("failed_checks", [])]
    assert failed == [] and r.returncode == 0, failed
    assert report["summary"]["passed"] >= 3 * 80
    docs = (ROOT / "docs" / "scale-out.md").read_text()
    assert all(f"`{check}`" in docs for check in JUSTIFIED)


def test_the_pod_keeps_what_it_does_not_need_out(manifest):
    import yaml
    d = {x["kind"] + "/" + x["metadata"]["name"]: x for x in yaml.safe_load_all(manifest.read_text())}
    pod = d["StatefulSet/buildkitd-arm64"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    c = pod["containers"][0]
    assert c["resources"]["limits"] == c["resources"]["requests"] == {"cpu": "4", "memory": "8Gi"}
    assert c["livenessProbe"]["exec"]["command"][0] == "buildctl"
    policy = d["NetworkPolicy/buildkitd-arm64"]["spec"]
    assert policy["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 1234}]
    assert {b["ipBlock"]["cidr"] for b in policy["ingress"][0]["from"]} == {"10.77.0.41/32"}   # its clients
    # out: not the cluster's own ranges (every private one by default), nor link-local, as the fence on a VM
    assert policy["egress"][0]["to"][0]["ipBlock"]["except"] == ["10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16",
                                                                 "172.16.0.0/12", "192.168.0.0/16"]
    assert policy["egress"][0]["to"][1]["ipBlock"]["except"] == ["fc00::/7", "fe80::/10"]
    # (the entrypoint does not claim the host's network namespace in a pod)
    assert "in a Kubernetes pod, the pod's" in d["ConfigMap/buildkitd-arm64-config"]["data"]["entrypoint.sh"]
