"""The Kubernetes manifests (no cluster here: they are parsed, never applied): every document parses, the
pieces refer to each other, the certificate names every pod, the config is the host's own for its BuildKit
version, and the file holding the server key is 0600."""
from __future__ import annotations

import base64
import dataclasses
import stat
import subprocess
import sys
import tomllib

import yaml
from conftest import ROOT
from cryptography import x509

from buildkit_ops import inventory as I
from buildkit_ops.flows import kubernetes
from buildkit_ops.inventory import buildkit_versions
from buildkit_ops.pki import certs as pki


def docs(tmp_path, replicas=3, platform="linux/arm64"):
    inv = dataclasses.replace(I.load(ROOT / "inventory.yml"), pki_dir=tmp_path / "pki")
    pki.ensure_ca(inv.pki_dir, 3650)
    host = inv.hosts["build1"]
    host = dataclasses.replace(host, buildkit=dataclasses.replace(host.buildkit, registries={}))
    text = kubernetes.dump(kubernetes.manifests(inv, host, "ci", platform, replicas, "50Gi"))
    return {d["kind"] + ("/" + d["metadata"]["name"]): d for d in yaml.safe_load_all(text)}, host


def test_every_manifest_parses_and_they_refer_to_each_other(tmp_path):
    d, host = docs(tmp_path)
    sts = d["StatefulSet/buildkitd-arm64"]
    svc = d["Service/buildkitd-arm64"]
    assert svc["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == "buildkitd-arm64"
    labels = sts["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"] == labels == sts["spec"]["selector"]["matchLabels"]
    assert d["PodDisruptionBudget/buildkitd-arm64"]["spec"]["selector"]["matchLabels"] == labels
    pod = sts["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.io/arch": "arm64"} and sts["spec"]["replicas"] == 3
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["config"]["configMap"]["name"] in {k.split("/")[1] for k in d if k.startswith("ConfigMap/")}
    assert volumes["tls"]["secret"]["secretName"] == "buildkitd-arm64-tls"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
    c = pod["containers"][0]
    assert c["image"] == host.buildkit.image and "buildctl" in " ".join(c["lifecycle"]["preStop"]["exec"]["command"])
    assert {m["mountPath"] for m in c["volumeMounts"]} >= {"/var/lib/buildkit", "/run/buildkit"}
    gateway = pod["containers"][1]   # the sidecar in front of buildkitd: the TLS port, buildkitd's socket
    assert gateway["ports"][0]["containerPort"] == host.buildkit.port and not c.get("ports")
    assert {m["mountPath"] for m in gateway["volumeMounts"]} == {"/usr/local/etc/haproxy", "/etc/gateway/tls",
                                                                 "/run/buildkit"}


def test_the_sidecar_has_every_file_its_haproxy_cfg_names(tmp_path):
    import re
    d, _host = docs(tmp_path)
    config = d["ConfigMap/buildkitd-arm64-config"]["data"]
    pod = d["StatefulSet/buildkitd-arm64"]["spec"]["template"]["spec"]
    sources = next(v for v in pod["volumes"] if v["name"] == "gateway")["projected"]["sources"]
    mounted = {i["path"] for s in sources for i in (s.get("configMap") or s.get("secret"))["items"]}
    named = set(re.findall(r"/usr/local/etc/haproxy/([A-Za-z0-9._-]+)", config["haproxy.cfg"]))
    assert {"build_turns.lua", "limits.map", "clients.map", "crl.pem", "server.pem", "connections.lua"} <= named
    assert named <= mounted and named - {"server.pem"} <= set(config)


def test_the_server_certificate_names_every_pod_the_service_and_the_fleet(tmp_path):
    d, _ = docs(tmp_path)
    cert = x509.load_pem_x509_certificate(base64.b64decode(d["Secret/buildkitd-arm64-tls"]["data"]["server.crt"]))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert sans == [f"buildkitd-arm64-{i}.buildkitd-arm64.ci.svc" for i in range(3)] + [
        "buildkitd-arm64.ci.svc", "fleet.buildkit-ops.invalid"]


def test_the_config_is_the_hosts_own_for_its_version(tmp_path):
    d, host = docs(tmp_path)
    toml = tomllib.loads(d["ConfigMap/buildkitd-arm64-config"]["data"]["buildkitd.toml"])
    assert toml["grpc"]["address"] == ["unix:///run/buildkit/buildkitd.sock"] and "tls" not in toml["grpc"]
    assert "crl-file /usr/local/etc/haproxy/crl.pem" in d["ConfigMap/buildkitd-arm64-config"]["data"]["haproxy.cfg"]
    from unit_helpers import keys
    assert keys(toml) <= buildkit_versions.known_keys(host.buildkit.version)
    assert "fence.sh apply" in d["ConfigMap/buildkitd-arm64-config"]["data"]["entrypoint.sh"]   # the fence
    assert "iptables" in d["ConfigMap/buildkitd-arm64-config"]["data"]["fence.sh"]


def test_the_command_writes_a_0600_file_and_prints_no_key(tmp_path):
    inv = tmp_path / "inventory.yml"
    data = yaml.safe_load((ROOT / "inventory.yml").read_text())
    data["all"]["vars"].update(pki_dir=str(tmp_path / "pki"), ssh_key=str(tmp_path / "id"))
    data["all"]["vars"]["buildkit"].pop("registries")
    data["all"]["vars"]["buildkit"].pop("image_archive")
    inv.write_text(yaml.safe_dump(data))
    pki.ensure_ca(tmp_path / "pki", 3650)
    out = tmp_path / "k.yaml"
    r = subprocess.run([sys.executable, "-m", "invoke", "k8s-manifests", "-i", str(inv), "--out", str(out),
                        "--replicas", "2"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and "PRIVATE KEY" not in r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "invoke", "k8s-manifests", "-i", str(inv), "--namespace", "Bad_NS"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "is not a Kubernetes namespace" in r.stderr and "Traceback" not in r.stderr


def test_egress_denies_the_ranges_given_and_link_local_always(tmp_path):
    inv = I.load(ROOT / "inventory.yml")
    meta = {"labels": {"app": "x"}}
    narrow = kubernetes.network_policy(inv, "x", meta, 1234, ("10.96.0.0/12",))["spec"]["egress"][0]["to"]
    assert [b["ipBlock"]["except"] for b in narrow] == [["10.96.0.0/12", "169.254.0.0/16"], ["fe80::/10"]]
