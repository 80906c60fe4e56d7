"""The README's examples run as written, on the lab: every line of its `sh` blocks (but the two commands,
which are the demo and this suite), with only the lab's addresses put in for the example ones (no test
contacts an address outside the lab). They run in a scratch copy of the checkout (its own inventory.yml,
the code and the lab's files linked in), since the examples edit inventory.yml as a user's would."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from helpers import ROOT, invoke, let_in

pytestmark = pytest.mark.lab

# README example values -> the lab's; the README is never edited, only the command run
SUBSTITUTE = {
    "build1.example.com": "10.77.0.11",
    "203.0.113.7": "10.77.0.22",
    "~/.ssh/known_hosts": "known_hosts.example",
}
CHECKOUT = ROOT / ".test-readme-checkout"


def readme_blocks() -> list[list[str]]:
    """The command lines of each ```sh block, comments and continuation comments dropped."""
    text = (ROOT / "README.md").read_text()
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines = [re.sub(r"\s+#.*$", "", l).strip() for l in body.splitlines()]
        blocks.append([l for l in lines if l and not l.startswith("#")])
    return blocks


def run(line: str) -> subprocess.CompletedProcess:
    for example, lab in SUBSTITUTE.items():
        line = line.replace(example, lab)
    env = dict(os.environ, PATH=f"{ROOT / '.venv/bin'}:{os.environ['PATH']}")
    return subprocess.run(["bash", "-c", line], cwd=CHECKOUT, env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def blocks(lab):
    shutil.rmtree(CHECKOUT, ignore_errors=True)
    CHECKOUT.mkdir()
    for name in ("buildkit_ops", "roles", "templates", "lab", "tasks.py", "invoke.yaml", ".lab", ".pki"):
        (CHECKOUT / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "inventory.yml", CHECKOUT / "inventory.yml")
    r = invoke("provision", "-i", str(CHECKOUT / "inventory.yml"))
    assert r.returncode == 0, r.stderr
    # the README's `--ssh-user alice`: a developer account on laptop2 that may use Docker
    pub = (ROOT / ".lab/ssh/id_ed25519.pub").read_text()
    r = lab.run("laptop2", "id alice >/dev/null 2>&1 || useradd -m -s /bin/sh -G docker alice; "
                           "install -d -o alice -m 700 /home/alice/.ssh && cat > /home/alice/.ssh/authorized_keys && "
                           "chown alice /home/alice/.ssh/authorized_keys", capture=True, input=pub)
    assert r.returncode == 0, r.stderr
    yield readme_blocks()
    for inv, clients in (("prod.yml", ["alice"]), ("inventory.yml", ["laptop2", "me", "ci-runner"])):
        for name in clients:
            if (CHECKOUT / inv).exists() and f"  {name}:" in (CHECKOUT / inv).read_text():
                invoke("remove-client", name, "-i", str(CHECKOUT / inv))
    shutil.rmtree(CHECKOUT, ignore_errors=True)


def test_the_readme_has_the_blocks_this_test_runs(blocks):
    assert blocks[0] == ["./bkops demo", "./bkops test"]  # the two commands: the demo test and this suite
    assert [b[0] for b in blocks[1:]] == ["invoke --list", "invoke add-client laptop",
                                          "invoke add-client ci-runner --address 10.77.0.50 --connection none",
                                          "invoke status", "cp inventory.yml prod.yml"]


def test_task_examples_run_as_written(blocks):
    for line in blocks[1]:
        r = run(line)
        assert r.returncode == 0, (line, r.stderr)
    assert "provision" in run("invoke --list").stdout


def test_client_examples_run_as_written(blocks, lab):
    for line in blocks[2]:
        r = run(line)
        assert r.returncode == 0, (line, r.stderr[-2000:])
    allowed = " ".join(let_in(lab))
    assert "10.77.0.16/29" not in allowed and " 10.77.0.22" in allowed  # the move closed the old one


def test_ci_runner_examples_run_as_written(blocks, lab):
    for line in blocks[3]:
        r = run(line)
        assert r.returncode == 0, (line, r.stderr[-2000:])
        if line.startswith("ls "):
            assert set(r.stdout.split()) == {"ca.pem", "cert.pem", "key.pem", "github-actions.yml", "gitlab-ci.yml",
                                            "buildx-builder.sh"}
    assert "10.77.0.50" not in " ".join(let_in(lab))   # removed again


def test_status_examples_run_as_written(blocks):
    for line in blocks[4]:
        r = run(line)
        assert r.returncode == 0, (line, r.stderr[-2000:])
        if "--prometheus" in line:
            assert 'buildkit_ops_up{host="build1"} 1' in r.stdout


def test_real_server_examples_run_as_written_against_the_lab(blocks, lab):
    invoke("remove-client", "laptop2", "-i", str(CHECKOUT / "inventory.yml"))  # its address is alice's below
    for line in blocks[5]:
        r = run(line)
        assert r.returncode == 0, (line, r.stderr[-2000:])
    assert (CHECKOUT / "known_hosts.example").read_text().startswith("10.77.0.11 ")
    assert any(m.startswith("alice ") for m in let_in(lab))
    out = lab.run("laptop2", "su - alice -c 'docker buildx ls'", capture=True).stdout
    assert "tcp://10.77.0.11:1234" in out
