"""The CI issuer's role, planned from facts: what it writes (its code, its configuration by a serializer, the
intermediates' keys 0600), that a converged host changes nothing and restarts nothing, that a trust gone takes
its key away, and that without trusts everything of it is removed."""
from __future__ import annotations

import json
from pathlib import Path

from buildkit_ops.ci_trust.rules import Rule, Trust
from buildkit_ops.engine.contract import Templates
from buildkit_ops.engine.render import FileState
from buildkit_ops.roles import ci_issuer as role

TEMPLATES = Templates(Path(role.__file__).parent / "templates")
TRUST = Trust("github", "https://token.actions.githubusercontent.com", "buildkit-ops",
              (Rule({"repository": "org/app"}, tenant="red"),), 30)


def issuer_input(**trusts):
    trusts = trusts or {"github": TRUST}
    return role.IssuerInput(trusts, {n: (b"-----BEGIN CERTIFICATE-----\n", b"key\n") for n in trusts})


def on_host(files):
    return {f.path: FileState(f.sha256, f"{f.mode:o}", "root:root") for f in files}


def test_its_files_are_root_s_the_keys_and_configuration_0600_and_the_config_is_json():
    files = {f.path: f for f in role.render(issuer_input(), TEMPLATES)}
    key = files["/etc/buildkit-ops/ci-issuer/github.key"]
    assert key.mode == 0o600 and key.secret
    config = files["/etc/buildkit-ops/ci-issuer/config.json"]
    assert config.mode == 0o600
    doc = json.loads(config.content)
    assert doc["socket"] == "/run/buildkit-ops/ci-issuer.sock" and doc["trusts"][0]["minutes"] == 30
    assert "/usr/local/lib/buildkit-ops/ci_trust/server.py" in files
    unit = files["/etc/systemd/system/buildkit-ops-ci-issuer.service"].content.decode()
    assert "ExecStart=/usr/bin/python3 -m ci_trust.server /etc/buildkit-ops/ci-issuer/config.json" in unit
    assert "ProtectSystem=strict" in unit and "ReadWritePaths=/run/buildkit-ops\n" in unit


def test_a_converged_host_changes_nothing_and_restarts_nothing():
    files = role.render(issuer_input(), TEMPLATES)
    facts = role.IssuerFacts(["enabled", "active"], True, [role.UNIT_FILE, role.ETC, role.CODE],
                             ["config.json", "github.crt", "github.key"])
    assert not [s for s in role.plan(files, facts, on_host(files)) if s.changed]
    # (positive control) its configuration changed: written, and the service restarted
    states = on_host(files)
    states["/etc/buildkit-ops/ci-issuer/config.json"] = FileState("x", "600", "root:root")
    changed = [s.name for s in role.plan(files, facts, states) if s.changed]
    assert changed == ["/etc/buildkit-ops/ci-issuer/config.json", "service"]


def test_the_key_of_a_trust_no_longer_listed_is_removed():
    files = role.render(issuer_input(), TEMPLATES)
    facts = role.IssuerFacts(["enabled", "active"], True, [], ["config.json", "github.crt", "github.key",
                                                               "gitlab.crt", "gitlab.key"])
    [step] = [s for s in role.plan(files, facts, on_host(files)) if s.changed]
    assert step.script == "rm -f /etc/buildkit-ops/ci-issuer/gitlab.crt /etc/buildkit-ops/ci-issuer/gitlab.key\n"


def test_without_trusts_everything_of_it_is_removed_and_nothing_when_nothing_is_there():
    facts = role.IssuerFacts(["enabled", "active"], True, [role.UNIT_FILE, role.ETC])
    [step] = role.plan([], facts, {})
    assert "systemctl disable --now buildkit-ops-ci-issuer" in step.script and role.ETC in step.script
    assert role.plan([], role.IssuerFacts(), {}) == []


def test_its_state_in_systemds_words():
    assert [role.IssuerFacts(u).state for u in (["enabled", "active"], ["enabled", "failed"], ["disabled", "active"],
                                                ["inactive"], [])] == [
        "running", "failed", "not enabled", "absent", "absent"]


def test_the_hosts_python_libraries_are_installed_when_missing():
    files = role.render(issuer_input(), TEMPLATES)
    facts = role.IssuerFacts(["enabled", "active"], False, [], ["config.json", "github.crt", "github.key"])
    steps = role.plan(files, facts, on_host(files))
    assert steps[0].packages == ["python3-jwt", "python3-cryptography"] and steps[-1].changed
