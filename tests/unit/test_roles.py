"""Planning is pure: facts in, steps out. Tables of cases, no SSH (the lab tests run the same code for real)."""
from __future__ import annotations

import pytest
from conftest import ROOT

from buildkit_ops import inventory
from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.render import parse_file_states
from buildkit_ops.inventory import PruneSchedule
from buildkit_ops.roles import buildkitd, engine, firewall


def _host():
    """build1 of the shipped inventory, with its file paths pointed at a scratch directory."""
    import tempfile
    from pathlib import Path
    tmp = Path(tempfile.mkdtemp(prefix="bkops-roles-"))
    (tmp / "registry-ca.crt").write_text("registry ca\n")
    text = (ROOT / "inventory.yml").read_text().replace(".lab/registry/ca.crt", str(tmp / "registry-ca.crt"))
    (tmp / "inventory.yml").write_text(text)
    return inventory.load(tmp / "inventory.yml").hosts["build1"]


HOST = _host()
TLS = {"ca.crt": b"ca\n", "server.crt": b"crt\n", "server.key": b"key\n"}
FILES = buildkitd.render(HOST, TLS, "sha256:abc")


def test_sections_split_facts_output():
    assert sections("junk\n@@a\n1\n2\n@@b\n\n@@c\nx") == {"a": "1\n2", "b": "", "c": "x"}


# ------------------------------------------------------------------ engine
@pytest.mark.parametrize("facts,changed,script_has", [
    ({"os": "debian 12", "docker": "20.10.24", "compose": "2.26.1"}, False, None),
    ({"os": "debian 12", "docker": "", "compose": ""}, True, "docker.io docker-compose/trixie"),
    ({"os": "debian 13", "docker": "", "compose": ""}, True, "docker.io docker-compose\n"),
    ({"os": "ubuntu 24.04 debian", "docker": "24.0", "compose": ""}, True, "docker.io docker-compose-v2"),
    ({"os": "linuxmint 21 ubuntu debian", "docker": "", "compose": ""}, True, "docker-compose-v2"),
])
def test_engine_plan(facts, changed, script_has):
    [step] = engine.plan(engine.parse(facts))
    assert step.changed is changed
    if script_has:
        assert script_has in step.script
        assert "systemctl enable --now docker" in step.script


@pytest.mark.parametrize("os_", ["fedora 40", "alpine 3.20", "unknown 0"])
def test_engine_refuses_unsupported_os_when_docker_is_missing(os_):
    with pytest.raises(engine.UnsupportedHost, match="is not Debian or Ubuntu"):
        engine.plan(engine.parse({"os": os_, "docker": "", "compose": ""}))


def test_engine_accepts_any_os_that_already_has_docker_and_compose():
    assert not engine.plan(engine.parse({"os": "fedora 40", "docker": "27.0", "compose": "2.29.0"}))[0].changed


# ------------------------------------------------------------------ firewall
ACTIVE = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), deny (routed)"
SSH = "ufw allow 22/tcp comment 'buildkit-ops ssh'"
LAPTOP = "ufw allow from 10.0.0.21 to any port 1234 proto tcp comment 'buildkit-ops client laptop'"
OLD = "ufw allow from 10.0.0.9 to any port 1234 proto tcp comment 'buildkit-ops client old'"
MINE = "ufw allow 80/tcp comment 'web'"


def fw(status, rules, clients):
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": status, "ufw_rules": "\n".join(rules)}), 22, 1234,
                          clients)
    return [s.script for s in steps]


@pytest.mark.parametrize("status,rules,clients,scripts", [
    # fresh host: SSH first, then the clients, then enable
    ("Status: inactive", [], {"laptop": "10.0.0.21"},
     ["", f"{SSH}\n", f"{LAPTOP}\n", "ufw default deny incoming\nufw default allow outgoing\nufw --force enable\n"]),
    # zero clients: SSH still allowed before enabling
    ("Status: inactive", [], {},
     ["", f"{SSH}\n", "", "ufw default deny incoming\nufw default allow outgoing\nufw --force enable\n"]),
    # converged: nothing
    (ACTIVE, [SSH, LAPTOP, MINE], {"laptop": "10.0.0.21"}, ["", "", "", ""]),
    # a client left the inventory: its rule is kept (and reported) unless dropping is asked for
    (ACTIVE, [SSH, LAPTOP, OLD, MINE], {"laptop": "10.0.0.21"}, ["", "", "", "", ""]),
    (ACTIVE, [SSH, LAPTOP, OLD, MINE], {"laptop": "10.0.0.21", "drop": {"old"}},
     ["", "", "ufw delete allow from 10.0.0.9 to any port 1234 proto tcp\n", ""]),
    # a client moved, with --prune-clients: new rule in, old out; the operator's own rule always stays
    (ACTIVE, [SSH, LAPTOP, MINE], {"laptop": "10.0.0.22", "drop": True},
     ["", "", "ufw allow from 10.0.0.22 to any port 1234 proto tcp comment 'buildkit-ops client laptop'\n"
          "ufw delete allow from 10.0.0.21 to any port 1234 proto tcp\n", ""]),
])
def test_firewall_plan(status, rules, clients, scripts):
    clients = dict(clients)
    drop = clients.pop("drop", False)
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": status, "ufw_rules": "\n".join(rules)}), 22, 1234,
                          clients, drop)
    assert [s.script for s in steps] == scripts


def test_firewall_reports_a_kept_rule_of_an_unknown_client():
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, OLD])}), 22,
                          1234, {})
    kept = [s for s in steps if s.name.startswith("rule for old")]
    assert kept and not kept[0].changed and "invoke remove-client old" in kept[0].detail


def test_firewall_installs_ufw_when_missing_and_still_allows_ssh_first():
    steps = firewall.plan(firewall.parse({"ufw_present": "no"}), 2222, 1234, {})
    assert "apt-get install" in steps[0].script
    assert steps[2].script == "ufw allow 2222/tcp comment 'buildkit-ops ssh'\n"
    assert steps[-1].script.endswith("ufw --force enable\n")


# ------------------------------------------------------------------ buildkitd
def file_facts(files, override=None):
    lines = []
    for f in files:
        sha, mode = f.sha256, f"{f.mode:o}"
        if override and f.path.endswith(override[0]):
            sha, mode = override[1], override[2]
        lines.append(f"{sha} {mode} root:root {f.path}")
    return "\n".join(lines)


def converged_facts():
    return {"files": file_facts(FILES), "image": "sha256:abc",
            "container": f"running 2026-01-01T00:00:00Z sha256:abc {buildkitd.config_hash(FILES, 'sha256:abc')}",
            "port": "LISTEN 0 4096 *:1234 *:* users:((\"buildkitd\",pid=1,fd=3))"}


def bk_plan(facts):
    """buildkitd's plan from facts as the host prints them (sections), for build1 and its rendered files."""
    return buildkitd.plan(HOST, FILES, buildkitd.parse(facts), parse_file_states(facts.get("files", "")), "sha256:abc")


def changed(steps):
    return [(s.name, s.detail) for s in steps if s.changed]


def test_buildkitd_converged_plans_nothing():
    assert changed(bk_plan(converged_facts())) == []


def test_buildkitd_changed_file_is_uploaded_and_notifies_the_handler():
    facts = converged_facts()
    facts["files"] = file_facts(FILES, ("buildkitd.toml", "0" * 64, "644"))
    steps = [s for s in bk_plan(facts) if s.changed]
    assert [(s.name, s.detail, s.notify) for s in steps] == [("buildkitd.toml", "content", ["recreate buildkitd"])]
    assert "mv -f /opt/buildkit-ops/buildkitd.toml.bkops-tmp /opt/buildkit-ops/buildkitd.toml" in steps[0].script


def test_buildkitd_wrong_key_mode_is_fixed():
    facts = converged_facts()
    key = next(f for f in FILES if f.secret)
    facts["files"] = file_facts(FILES, ("tls/server.key", key.sha256, "644"))
    assert changed(bk_plan(facts)) == [("tls/server.key", "mode 644 root:root")]


def test_buildkitd_new_image_is_loaded_from_the_archive():
    facts = converged_facts()
    facts["image"] = "sha256:old"
    steps = [s for s in bk_plan(facts) if s.changed]
    assert steps[0].upload == HOST.buildkit.image_archive and steps[0].script == "docker load -q\n"


def test_buildkitd_stopped_container_is_started():
    facts = converged_facts()
    facts["container"] = facts["container"].replace("running", "exited")
    assert changed(bk_plan(facts)) == [("service", "exited: start")]


def test_buildkitd_port_taken_by_another_program_is_an_error():
    facts = converged_facts()
    facts["port"] = "LISTEN 0 5 0.0.0.0:1234 0.0.0.0:* users:((\"nc\",pid=77,fd=3))"
    with pytest.raises(buildkitd.PortTaken, match="port 1234 is already taken on build1"):
        bk_plan(facts)


def test_rendered_config_listens_on_mutual_tls_only():
    # (that it holds only keys its BuildKit version knows: test_buildkit_versions.py)
    toml = next(f for f in FILES if f.path.endswith("buildkitd.toml")).content.decode()
    assert 'address = ["tcp://0.0.0.0:1234", "unix:///run/buildkit/buildkitd.sock"]' in toml
    assert "[grpc.tls]" in toml  # never a plaintext TCP listener


def test_compose_privileges_follow_the_inventory():
    import copy
    h = copy.deepcopy(HOST)
    h.buildkit.privileges = "privileged"
    compose = buildkitd.render(h, TLS, None)[0].content.decode()
    assert "privileged: true" in compose and "cap_add" not in compose
    lab = FILES[0].content.decode()
    assert "privileged" not in lab.replace("`privileged`", "") and "cap_drop: [SYS_RESOURCE]" in lab


def test_batch_script_stops_at_the_first_failure_and_reports_it():
    import subprocess

    from buildkit_ops.engine.contract import Step
    from buildkit_ops.engine.runner import batch_script
    steps = [Step("a", "one", True, script="echo one > /dev/null\n"),
             Step("a", "two", True, script="echo broken >&2\nfalse\necho never\n"),
             Step("a", "three", True, script="echo three-ran\n")]
    r = subprocess.run(["sh", "-s"], input=batch_script(steps), capture_output=True, text=True)
    assert r.returncode == 1
    assert sections(r.stdout) == {"failed1": "broken"}


# ------------------------------------------------------------------ prune
def test_prune_plan():
    import copy

    from buildkit_ops.roles import prune
    h = copy.deepcopy(HOST)
    h.buildkit.prune_schedule = PruneSchedule(calendar="weekly", keep_storage=5 * 10**9, all=True)
    files = prune.render(h)
    assert b"prune --keep-storage 5000 --all" in files[0].content and b"OnCalendar=weekly" in files[1].content
    fresh = prune.plan(h, prune.parse({"prune_units": "", "prune_timer": ""}), {})
    assert [(s.name, s.changed) for s in fresh] == [("buildkit-ops-prune.service", True),
                                                     ("buildkit-ops-prune.timer", True), ("timer enabled", True)]
    converged = prune.parse({"prune_units": "\n".join(f.path for f in files), "prune_timer": "enabled\nactive"})
    states = parse_file_states(file_facts(files))
    assert not any(s.changed for s in prune.plan(h, converged, states))
    h.buildkit.prune_schedule = None
    [gone] = prune.plan(h, converged, states)
    assert gone.changed and "systemctl disable --now buildkit-ops-prune.timer" in gone.script
    assert prune.plan(h, prune.parse({"prune_units": "", "prune_timer": ""}), {}) == []


def test_parse_buildx_inspect_nodes():
    from buildkit_ops.clients.builder import parse_nodes_status
    text = ("Name:          b\nDriver:        remote\n\nNodes:\nName:             b-build1\nEndpoint:         tcp://x:1\n"
            "Status:           running\nPlatforms:        linux/amd64\n\nName:             b-build2\n"
            "Endpoint:         tcp://y:1\nStatus:           inactive\n")
    assert parse_nodes_status(text) == [("b-build1", "running"), ("b-build2", "inactive")]


# ------------------------------------------------------------------ trust boundary: planning
def test_a_secret_with_the_wrong_mode_is_fixed_by_chmod_and_its_content_never_travels():
    facts = converged_facts()
    facts["files"] = file_facts(FILES, ("tls/server.key", next(f.sha256 for f in FILES if f.secret), "644"))
    step = next(s for s in bk_plan(facts) if s.changed)
    assert (step.name, step.detail) == ("tls/server.key", "mode 644 root:root")
    assert step.script == "chmod 600 /opt/buildkit-ops/tls/server.key && chown root:root /opt/buildkit-ops/tls/server.key\n"
    assert step.diff is None


@pytest.mark.parametrize("rule,opens", [
    ("ufw allow 1234/tcp", True), ("ufw allow 1234", True), ("ufw allow 1000:2000/tcp", True),
    ("ufw allow 22,1234/tcp", True), ("ufw limit 1234/tcp", True), ("ufw allow in on eth0 to any port 1234", True),
    ("ufw allow from 10.0.0.0/8", True), ("ufw allow from 10.0.0.0/8 to any", True),
    ("ufw allow proto tcp from any to any port 1234", True), ("ufw allow 1234/tcp comment 'web'", True),
    ("ufw allow 1234/udp", False), ("ufw allow 80/tcp", False), ("ufw deny 1234/tcp", False),
    ("ufw allow out 1234/tcp", False), ("ufw allow OpenSSH", False), ("ufw allow from 10.0.0.0/8 port 53", True),
    ("ufw allow proto udp from any to any port 1234", False), ("ufw allow from 10.0.0.5 to any port 80", False),
])
def test_which_rules_open_the_buildkit_port(rule, opens):
    assert firewall.opens_port(rule, 1234) is opens


def test_a_rule_of_others_opening_the_port_fails_the_plan_unless_pruned():
    facts = {"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, LAPTOP, MINE,
                                                                                 "ufw allow 1234/tcp"])}
    with pytest.raises(firewall.FirewallConflict, match="ufw allow 1234/tcp"):
        firewall.plan(firewall.parse(facts), 22, 1234, {"laptop": "10.0.0.21"})
    steps = firewall.plan(firewall.parse(facts), 22, 1234, {"laptop": "10.0.0.21"}, drop=True)
    assert [s.script for s in steps if s.changed] == ["ufw delete allow 1234/tcp\n"]


def test_ipv6_filtering_is_switched_on_then_ssh_allowed_again():
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": "\n".join([SSH, LAPTOP]),
                           "ufw_ipv6": "no"}), 22, 1234, {"laptop": "10.0.0.21"})
    assert changed(steps) == [("IPv6 filtered too", "IPV6=no -> yes")]
    script = steps[0].script
    assert script.index("IPV6=yes") < script.index("ufw reload") < script.index(f"{SSH}\n")


def test_buildkitd_refuses_a_config_for_another_version_than_the_running_one():
    import dataclasses

    from conftest import ROOT

    from buildkit_ops import inventory
    from buildkit_ops.roles import buildkitd as bkd
    inv = inventory.load(ROOT / "inventory.yml")
    h = inv.hosts["build1"]
    bkd.check_version(h, "v0.13.2")          # the same minor version: fine
    bkd.check_version(h, None)               # not answering: nothing to compare
    bkd.check_version(h, "v0.0.0+unknown")   # a development build: nothing to compare
    newer = dataclasses.replace(h, buildkit=dataclasses.replace(h.buildkit, version="v0.29.0"))
    with pytest.raises(bkd.WrongVersion, match="build1 runs BuildKit v0.13.2 .* buildkit.version v0.29.0"):
        bkd.check_version(newer, "v0.13.2")
