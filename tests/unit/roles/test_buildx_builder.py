"""The buildx builder role: the builder on a client machine, recreated only when its nodes, certificates or default
changed; refused on a machine without buildx or with the buildkitd.default.toml trap; values passed to its
script as single words."""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import pytest
from unit_helpers import GOOD, SHELL_BREAKOUT, load_text, run_with_stubs

from buildkit_ops.engine.contract import PlanError
from buildkit_ops.fleet.nodes import Node
from buildkit_ops.roles import buildx_builder
from buildkit_ops.roles.buildx_builder.exports import CERT_FILES, parse_nodes_status

LAPTOP = dataclasses.replace(load_text(Path(tempfile.mkdtemp()), GOOD).clients["laptop"], failover="none")


def test_parse_buildx_inspect_nodes():
    text = ("Name:          b\nDriver:        remote\n\nNodes:\nName:             b-build1\nEndpoint:         tcp://x:1\n"
            "Status:           running\nPlatforms:        linux/amd64\n\nName:             b-build2\n"
            "Endpoint:         tcp://y:1\nStatus:           inactive\n")
    assert parse_nodes_status(text) == [("b-build1", "running"), ("b-build2", "inactive")]


def test_client_bootstrap_script_passes_hostile_values_as_single_words(tmp_path):
    client = dataclasses.replace(LAPTOP, connection="local", builder="../../" + SHELL_BREAKOUT)
    nodes = [Node("n" + SHELL_BREAKOUT, "tcp://" + SHELL_BREAKOUT, SHELL_BREAKOUT, SHELL_BREAKOUT)]
    want = buildx_builder.BuilderInput(nodes, {n: b"pem" for n in CERT_FILES}, SHELL_BREAKOUT)
    home = tmp_path / "home"
    home.mkdir()
    calls = run_with_stubs(tmp_path, buildx_builder.bootstrap_script(client, want),
                           {"HOME": str(home)}, ["docker"])
    assert not (tmp_path / "pwned").exists() and not os.path.exists("/tmp/pwned")
    create = next(c for c in calls if c[1:3] == ["buildx", "create"])
    assert create[create.index("--name") + 1] == client.builder
    assert create[create.index("--node") + 1] == nodes[0].name
    assert create[create.index("--platform") + 1] == SHELL_BREAKOUT
    assert create[-1] == nodes[0].endpoint
    assert create[create.index("--driver-opt") + 1].endswith(f",servername={SHELL_BREAKOUT}")
    # the files stay inside ~/.docker/buildkit-ops/, in a directory named by a hash of the odd builder name
    written = [p for p in home.rglob("*") if p.is_file()]
    assert written and all(str(p).startswith(str(home / ".docker" / "buildkit-ops" / "h-")) for p in written)


WANT = buildx_builder.BuilderInput([Node("buildkit-ops-build1", "tcp://10.0.0.11:1234", "10.0.0.11", "linux/amd64")],
                                   {n: n.encode() for n in CERT_FILES}, "abc123")


def facts(**kw):
    base = {"docker_config": "/root/.docker", "buildx": "github.com/docker/buildx 0.13.1", "trap": "",
            "state": "abc123", "certsums": buildx_builder.file_sums(WANT.files), "builder": "present"}
    return buildx_builder.parse({**base, **kw})


def test_a_builder_with_the_same_nodes_and_certificates_is_left_alone():
    [_, builder] = buildx_builder.plan(LAPTOP, WANT, facts())
    assert not builder.changed and builder.detail == "1 node(s): tcp://10.0.0.11:1234"


def test_a_builder_is_recreated_when_its_nodes_its_certificates_or_itself_changed():
    for changed in (dict(state="other"), dict(certsums="x\ny\nz"), dict(builder="absent")):
        [_, builder] = buildx_builder.plan(LAPTOP, WANT, facts(**changed))
        assert builder.changed and builder.sensitive and "docker buildx create" in builder.script, changed


def test_a_machine_without_buildx_or_with_the_default_toml_trap_is_refused_before_any_change():
    with pytest.raises(PlanError, match="`docker buildx` is not installed there"):
        buildx_builder.plan(LAPTOP, WANT, facts(buildx=""))
    with pytest.raises(PlanError, match=r"buildkitd.default.toml exists; .*\(mv /root/.docker/buildx/"):
        buildx_builder.plan(LAPTOP, WANT, facts(trap="/root/.docker/buildx/buildkitd.default.toml"))


def test_a_removed_clients_builder_and_proxy_are_planned_away_and_an_absent_one_is_left_alone(tmp_path):
    """Absent is a state: remove-client runs the client's roles with its removal confirmed (Options.remove)."""
    from buildkit_ops.engine.contract import Options
    from buildkit_ops.roles import failover_proxy
    inv = load_text(tmp_path, GOOD)
    client = inv.clients["laptop"]                       # (failover: proxy in the lab's inventory)
    gone = buildx_builder.prepare(inv, client, Options(remove=frozenset({"laptop"})))
    there = buildx_builder.parse({"docker_config": "/root/.docker", "buildx": "v0.13", "state": "abc",
                                  "certsums": "x\ny\nz", "builder": "present"})
    [step] = buildx_builder.plan(client, gone, there)
    assert step.changed and 'docker buildx rm "$B"' in step.script and 'rm -rf "$F"' in step.script
    [step] = buildx_builder.plan(client, gone, buildx_builder.parse({"builder": "absent"}))
    assert not step.changed and step.detail == "absent"
    # (the control: the same client not removed is planned as a builder, with its checks)
    with pytest.raises(buildx_builder.NoBuildx):
        buildx_builder.plan(client, buildx_builder.prepare(inv, client, Options()), buildx_builder.parse({}))
    role = failover_proxy.ROLE
    assert role.prepare(inv, client, Options(remove=frozenset({"laptop"}))) is None
    [step] = failover_proxy.removal(client, failover_proxy.parse({"proxy": "true 1234"}))
    assert step.changed and step.script.startswith("docker rm -f buildkit-ops-proxy-")
    assert not failover_proxy.removal(client, failover_proxy.parse({}))[0].changed
