"""What a CI job of a trust runs: a POSIX shell that `sh -n` reads, the same body in a GitHub Actions step and a
GitLab CI template that YAML reads back exactly; no value (an audience, a builder's name) adds a command."""
from __future__ import annotations

import subprocess

import yaml

from buildkit_ops.ci_trust.rules import Rule, Trust
from buildkit_ops.flows import ci_snippets
from buildkit_ops.pki import certs

HOSTS = [ci_snippets.Target("b-build1", "https://10.0.0.11:1235/v1/certificate", "tcp://10.0.0.11:1234", "10.0.0.11"),
         ci_snippets.Target("b-build2", "https://[fd00::12]:1235/v1/certificate", "tcp://[fd00::12]:1234",
                            "fd00::12")]
HOSTILE = 'aud"; touch /tmp/pwned; echo "$(id)`id`'


def ca_pem(tmp_path):
    return certs.create_ca(tmp_path, 1).pem


def test_the_shell_is_posix_and_names_each_host_and_node(tmp_path):
    body = ci_snippets.shell(ca_pem(tmp_path), HOSTS, "b")
    assert subprocess.run(["sh", "-n"], input=body, text=True).returncode == 0
    assert "for url in https://10.0.0.11:1235/v1/certificate 'https://[fd00::12]:1235/v1/certificate'; do" in body
    assert "--node b-build1 --driver remote" in body and "--append --node b-build2" in body
    assert "PRIVATE KEY" not in body            # the CA's public certificate only


def test_a_hostile_audience_stays_one_word_in_the_github_step_and_one_value_in_gitlab(tmp_path):
    trust = Trust("github", "https://token.actions.githubusercontent.com", HOSTILE, (Rule({"repository": "o/a"}),))
    body = ci_snippets.shell(ca_pem(tmp_path), HOSTS, "b")
    step = yaml.safe_load(ci_snippets.github(trust, body, "b"))[0]
    run = step["run"]
    assert subprocess.run(["sh", "-n"], input=run, text=True).returncode == 0
    assert "touch /tmp/pwned" not in run.replace("%20touch%20%2Ftmp%2Fpwned", "")
    job = yaml.safe_load(ci_snippets.gitlab(trust, body, "b"))[".buildkit-ops"]
    assert job["id_tokens"] == {"BKOPS_ID_TOKEN": {"aud": HOSTILE}} and job["before_script"] == [body]
