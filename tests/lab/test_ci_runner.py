"""A CI runner as a client (`connection: none`): add-client touches no machine, writes the three secrets (0600,
never printed) and the CI snippets; laptop2, given only those files the way a GitLab runner gets File variables,
creates its builder with the snippet's own commands and builds and pushes through the servers;
rotate-certs names it as needing new secrets; remove-client closes its port."""
from __future__ import annotations

import json
import secrets
import stat
from pathlib import Path

import pytest
import yaml
from helpers import INV, LAB, invoke, invoke_json, restore_inventory

from buildkit_ops import inventory as I

pytestmark = pytest.mark.lab

B1 = LAB.address("build1")
NAME = "ci-laptop2"


@pytest.fixture(scope="module")
def runner(lab):
    saved = INV.read_text()
    if "  laptop2:" in saved:  # (another module's client with the same address)
        invoke("remove-client", "laptop2")
    assert invoke("provision").returncode == 0
    yield lab
    restore_inventory(saved, temporary_clients=(NAME,))


def test_add_client_for_a_ci_runner_writes_secrets_and_snippets_and_prints_no_key(runner):
    lab = runner
    lab.run("laptop2", "docker buildx rm buildkit-ops; rm -rf /root/ci-vars", capture=True)
    rc, doc, err = invoke_json("add-client", NAME, "--address", LAB.address("laptop2"), "--connection", "none")
    assert rc == 0, err
    ci = doc["hosts"][NAME]["ci"]
    for text in (json.dumps(doc), err):
        assert "PRIVATE KEY" not in text and "BEGIN CERTIFICATE" not in text
    folder = Path(ci["folder"])
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name in ("ca.pem", "cert.pem", "key.pem", "github-actions.yml", "gitlab-ci.yml", "buildx-builder.sh"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600, name
    assert set(ci["secrets"]) == {"BUILDKIT_OPS_CA", "BUILDKIT_OPS_CERT", "BUILDKIT_OPS_KEY"}
    # no builder was set up over SSH: the machine was never touched
    assert lab.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).returncode != 0
    # the GitHub Actions step: setup-buildx-action's remote driver, one node per host, TLS from the env
    step = yaml.safe_load((folder / "github-actions.yml").read_text())[0]
    assert step["uses"].startswith("docker/setup-buildx-action@") and step["with"]["driver"] == "remote"
    assert step["with"]["endpoint"] == f"tcp://{B1}:1234"
    assert len(yaml.safe_load(step["with"]["append"])) == len(I.load(INV).hosts) - 1
    assert step["env"]["BUILDER_NODE_0_AUTH_TLS_KEY"] == "${{ secrets.BUILDKIT_OPS_KEY }}"
    assert invoke("add-client", NAME).stderr.count("changed=0") == 1   # twice: nothing changes


def test_the_runner_builds_and_pushes_with_only_the_written_files(runner, lab_status):
    lab, reg = runner, lab_status["registry"]
    folder = I.load(INV).pki_dir / "ci" / NAME
    for name in ("ca.pem", "cert.pem", "key.pem"):   # what GitLab gives a job for variables of type File
        lab.run("laptop2", f"mkdir -p /root/ci-vars && cat > /root/ci-vars/{name}", capture=True,
                input=(folder / name).read_text())
    before_script = yaml.safe_load((folder / "gitlab-ci.yml").read_text())[".buildkit-ops"]["before_script"]
    env = ("export BUILDKIT_OPS_CA=/root/ci-vars/ca.pem BUILDKIT_OPS_CERT=/root/ci-vars/cert.pem "
           "BUILDKIT_OPS_KEY=/root/ci-vars/key.pem\nset -e\n")
    r = lab.run("laptop2", "sh -s", capture=True, input=env + "\n".join(before_script) + "\n")
    assert r.returncode == 0, r.stderr
    r = lab.run("laptop2", f"docker login -u {reg['username']} --password-stdin {reg['address']}", capture=True,
                input=reg["password"])
    assert r.returncode == 0, r.stderr
    build_and_push(lab, reg)


def build_and_push(lab, reg) -> None:
    tag = f"{reg['address']}/team/ci:{secrets.token_hex(4)}"
    lab.run("laptop2", "mkdir -p /root/cip && cat > /root/cip/Dockerfile", capture=True,
            input=f"FROM {reg['address']}/lab/busybox:latest\nRUN echo {secrets.token_hex(8)} > /ci\n")
    r = lab.run("laptop2", f"docker buildx build --progress plain --push -t {tag} /root/cip", capture=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "pushing manifest" in r.stderr


def test_a_developer_machine_out_of_reach_builds_with_the_folders_own_script(runner, lab_status):
    """A developer's macOS or Windows machine is a client this tool cannot set up: the folder is copied there and
    its buildx-builder.sh run in it (laptop2 stands in: a shell and Docker's buildx, nothing of ours)."""
    lab, reg = runner, lab_status["registry"]
    folder = I.load(INV).pki_dir / "ci" / NAME
    lab.run("laptop2", "docker buildx rm buildkit-ops; rm -rf /root/copied", capture=True)
    for name in ("ca.pem", "cert.pem", "key.pem", "buildx-builder.sh"):
        lab.run("laptop2", f"mkdir -p /root/copied && cat > /root/copied/{name}", capture=True,
                input=(folder / name).read_text())
    r = lab.run("laptop2", "cd / && sh /root/copied/buildx-builder.sh", capture=True)
    assert r.returncode == 0, r.stderr
    nodes = lab.run("laptop2", "docker buildx inspect buildkit-ops", capture=True).stdout
    assert nodes.count("buildkit-ops-build") == len(I.load(INV).hosts), nodes
    build_and_push(lab, reg)


def test_rotate_certs_names_the_runner_as_needing_new_secrets(runner):
    r = invoke("rotate-certs", "--client", NAME)
    assert r.returncode == 0, r.stderr
    assert f"{NAME}: CI secrets  NEEDS NEW SECRETS" in r.stderr and "PRIVATE KEY" not in r.stderr


def test_a_ca_rotation_pauses_for_the_runner_and_finishes_once_its_secrets_are_updated(runner, lab_status):
    lab, reg = runner, lab_status["registry"]
    r = invoke("rotate-certs", "--ca")
    assert r.returncode == 1 and "paused after phase 3/5: the CI runners ci-laptop2 need their new secrets" in r.stderr
    assert "PRIVATE KEY" not in r.stderr
    # the operator puts the runner's new files into its CI (here: laptop2's variables), the job re-creates its
    # builder, and the rotation goes on
    folder = I.load(INV).pki_dir / "ci" / NAME
    for name in ("ca.pem", "cert.pem", "key.pem"):
        lab.run("laptop2", f"cat > /root/ci-vars/{name}", capture=True, input=(folder / name).read_text())
    r = invoke("rotate-certs", "--ca", "--ci-updated")
    assert r.returncode == 0 and "phase 5/5 drop-old" in r.stderr, r.stderr
    before_script = yaml.safe_load((folder / "gitlab-ci.yml").read_text())[".buildkit-ops"]["before_script"]
    env = ("export BUILDKIT_OPS_CA=/root/ci-vars/ca.pem BUILDKIT_OPS_CERT=/root/ci-vars/cert.pem "
           "BUILDKIT_OPS_KEY=/root/ci-vars/key.pem\nset -e\n")
    assert lab.run("laptop2", "sh -s", capture=True, input=env + "\n".join(before_script) + "\n").returncode == 0
    r = lab.run("laptop2", f"docker buildx build --progress plain --push -t {reg['address']}/team/ci:rotated "
                           f"/root/cip", capture=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_remove_client_closes_the_runners_port_and_its_folder(runner):
    lab = runner
    assert lab.run("laptop2", f"nc -z -w3 {B1} 1234", capture=True).returncode == 0
    r = invoke("remove-client", NAME)
    assert r.returncode == 0, r.stderr
    assert "delete its CI secrets" in r.stderr
    assert lab.run("laptop2", f"nc -z -w3 {B1} 1234", capture=True).returncode != 0
    lab.run("laptop2", "docker buildx rm buildkit-ops; rm -rf /root/ci-vars /root/cip", capture=True)
