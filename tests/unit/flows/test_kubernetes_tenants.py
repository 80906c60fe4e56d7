"""The Kubernetes manifests of an inventory with tenants: a StatefulSet per daemon of the --like host (the
fleet's and each of its tenants'), each with its own cache claims, Service, certificate and NetworkPolicy, and the
gateway in every pod routing by the same tenants map as on a host: its own daemon's clients in, every other
client refused with UNAVAILABLE (its builder tries its next node), the fleet's clients in a tenant's pod too."""
from __future__ import annotations

import base64
import dataclasses
import re

import pytest
import yaml
from conftest import ROOT
from cryptography import x509
from unit_helpers import inventory_with_tenants

from buildkit_ops import inventory as I
from buildkit_ops.flows import kubernetes
from buildkit_ops.pki import certs as pki


@pytest.fixture
def docs(tmp_path):
    inv = inventory_with_tenants(tmp_path)
    made = kubernetes.manifests(inv, inv.hosts["build1"], "ci", "linux/amd64", 2, "50Gi")
    return {d["kind"] + "/" + d["metadata"]["name"]: d for d in yaml.safe_load_all(kubernetes.dump(made))}


DAEMONS = {"buildkitd-amd64": None, "buildkitd-red-amd64": "red", "buildkitd-blue-amd64": "blue"}


def test_one_statefulset_per_daemon_of_the_like_host_each_with_its_own_pieces(docs):
    assert {k for k in docs if k.startswith("StatefulSet/")} == {f"StatefulSet/{n}" for n in DAEMONS}  # not green
    selectors = []
    for name in DAEMONS:
        sts = docs[f"StatefulSet/{name}"]["spec"]
        selector = sts["selector"]["matchLabels"]
        assert docs[f"Service/{name}"]["spec"]["selector"] == selector == sts["template"]["metadata"]["labels"]
        assert docs[f"PodDisruptionBudget/{name}"]["spec"]["selector"]["matchLabels"] == selector
        assert docs[f"NetworkPolicy/{name}"]["spec"]["podSelector"]["matchLabels"] == selector
        pod = sts["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["config"]["configMap"]["name"] == f"{name}-config"
        assert volumes["tls"]["secret"]["secretName"] == f"{name}-tls"
        assert sts["volumeClaimTemplates"][0]["metadata"]["name"] == "cache"   # a claim per pod per daemon
        selectors.append(selector)
    # no daemon's selector takes another daemon's pods
    for mine in selectors:
        assert [s for s in selectors if mine.items() <= s.items()] == [mine]


def test_each_daemon_has_its_own_settings_and_certificate(docs):
    red = docs["ConfigMap/buildkitd-red-amd64-config"]["data"]["buildkitd.toml"]
    fleet = docs["ConfigMap/buildkitd-amd64-config"]["data"]["buildkitd.toml"]
    assert "gckeepstorage = 7000000000" in red and "gckeepstorage = 10000000000" in fleet   # red's own GC budget
    assert 'bridgeName = "buildkit-t' in red and 'bridgeName = "buildkit0"' in fleet
    for name in DAEMONS:
        cert = x509.load_pem_x509_certificate(base64.b64decode(docs[f"Secret/{name}-tls"]["data"]["server.crt"]))
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert sans.get_values_for_type(x509.DNSName)[:3] == [f"{name}-0.{name}.ci.svc", f"{name}-1.{name}.ci.svc",
                                                              f"{name}.ci.svc"]


def routing(docs, name):
    data = docs[f"ConfigMap/{name}-config"]["data"]
    cfg = data["haproxy.cfg"]
    absent = set(re.findall(r"absent-\S+\.http if \{ var\(txn.tenant\) -m str (\S+) \}", cfg))
    backends = set(re.findall(r"use_backend tenant_(\S+) if", cfg))
    return data.get("tenants.map", ""), absent, backends


def test_every_gateway_routes_by_the_same_tenants_map_and_serves_its_own_daemon_only(docs):
    maps = set()
    for name, tenant in DAEMONS.items():
        tenants_map, absent, backends = routing(docs, name)
        maps.add(tenants_map)
        if tenant is None:   # the fleet's pods: clients of no tenant; every tenant refused
            assert backends == set() and absent == {"red", "blue", "green"}
        else:                # a tenant's pods: its clients; the other tenants and the fleet's refused
            assert backends == {tenant} and absent == {"red", "blue", "green", "default"} - {tenant}
    assert maps == {"ci1 blue\nlaptop red\n"}
    message = docs["ConfigMap/buildkitd-red-amd64-config"]["data"]["absent-default.http"]
    assert "grpc-status: 14" in message and "the fleet's buildkitd is not behind this gateway" in message


def test_each_daemon_is_reached_by_its_own_clients_only(docs):
    def sources(name):
        ingress = docs[f"NetworkPolicy/{name}"]["spec"]["ingress"]
        return {b["ipBlock"]["cidr"] for rule in ingress for b in rule["from"]}
    assert sources("buildkitd-amd64") == {"10.77.0.41/32"}
    assert sources("buildkitd-red-amd64") == {"10.77.0.21/32"}
    assert sources("buildkitd-blue-amd64") == {"10.77.0.31/32"}


def test_without_tenants_the_fleet_keeps_its_names_labels_and_no_tenant_file(tmp_path):
    inv = I.load(ROOT / "inventory.yml")
    inv = dataclasses.replace(inv, pki_dir=tmp_path / "pki")
    pki.ensure_ca(inv.pki_dir, 3650)
    host = inv.hosts["build1"]
    host = dataclasses.replace(host, buildkit=dataclasses.replace(host.buildkit, registries={}))
    made = kubernetes.manifests(inv, host, "ci", "linux/amd64", 2, "50Gi")
    assert [(d["kind"], d["metadata"]["name"]) for d in made] == [
        ("ConfigMap", "buildkitd-amd64-registries"), ("ConfigMap", "buildkitd-amd64-config"),
        ("Secret", "buildkitd-amd64-tls"), ("Service", "buildkitd-amd64"), ("PodDisruptionBudget", "buildkitd-amd64"),
        ("NetworkPolicy", "buildkitd-amd64"), ("StatefulSet", "buildkitd-amd64")]
    assert made[-1]["spec"]["selector"]["matchLabels"] == {   # as every earlier version rendered it (immutable)
        "app.kubernetes.io/name": "buildkitd", "app.kubernetes.io/managed-by": "buildkit-ops",
        "buildkit-ops/platform": "amd64"}
    config = made[1]["data"]
    assert "tenants.map" not in config and "tenants.map" not in config["haproxy.cfg"]
    assert not [k for k in config if k.endswith(".http")]
