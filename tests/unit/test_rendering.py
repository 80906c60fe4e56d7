"""The second wall: with validation bypassed, hostile values rendered into every generated file (TOML, YAML,
systemd units, shell scripts) stay values. Each file is parsed back (or run, for shell, against stub commands)
and its structure is exactly the expected one, with the hostile value intact where it belongs."""
from __future__ import annotations

import copy
import os
import shlex
import stat
import subprocess
import tomllib

import pytest
import yaml
from test_inventory import GOOD

from buildkit_ops import inventory as I
from buildkit_ops.clients import builder as clients
from buildkit_ops.engine import render
from buildkit_ops.inventory import loader
from buildkit_ops.roles import buildkitd, firewall, prune

TOML_BREAKOUT = '"]\n[grpc]\naddress = ["tcp://0.0.0.0:9999"]\ninsecure-entitlements = ["security.insecure"]\n#'
YAML_BREAKOUT = '"\n    pid: host\n    privileged: true\n#${HOME}'
SYSTEMD_BREAKOUT = "x\\'\nExecStartPre=/bin/sh -c 'id > /tmp/pwned'\n% $HOME ;"
SHELL_BREAKOUT = "x'; touch /tmp/pwned; echo '\n$(id)`id`"
HOSTILE = [TOML_BREAKOUT, YAML_BREAKOUT, SYSTEMD_BREAKOUT, SHELL_BREAKOUT, "\x00\x7f\x1b[31m\u2028"]
TLS = {"ca.crt": b"ca", "server.crt": b"crt", "server.key": b"key"}


@pytest.fixture
def host(tmp_path):
    """A valid host whose values are then replaced by hostile ones: validation bypassed."""
    inv = loader.parse(yaml.safe_load(GOOD), str(tmp_path / "inv.yml"), tmp_path)
    return copy.deepcopy(inv.hosts["build1"])


def rendered(host, name):
    return next(f for f in buildkitd.render(host, TLS, None) if f.path.endswith(name)).content.decode()


@pytest.mark.parametrize("evil", HOSTILE)
def test_toml_keeps_its_structure_whatever_the_values(host, tmp_path, evil):
    ca = tmp_path / "ca.crt"
    ca.write_text("registry CA")
    bk = host.buildkit
    version = bk.version
    bk.version = evil   # selects the schema: a version the renderer does not know is refused, never written
    with pytest.raises(ValueError, match="is not a v0.x.y BuildKit version"):
        rendered(host, "buildkitd.toml")
    bk.version = version
    bk.debug_address = bk.image = evil
    bk.gc.policies = [I.GCPolicy(filters=[evil, "type==source.local"], keep_duration=60)]
    bk.registries = {evil: I.Registry(mirrors=[evil], http=True, ca=str(ca))}
    doc = tomllib.loads(rendered(host, "buildkitd.toml"))
    assert set(doc) == {"debug", "grpc", "worker", "registry", "history"}
    assert set(doc["grpc"]) == {"address", "debugAddress", "tls"}
    assert doc["grpc"]["address"] == ["tcp://0.0.0.0:1234", "unix:///run/buildkit/buildkitd.sock"]
    assert doc["grpc"]["debugAddress"] == evil
    assert set(doc["worker"]) == {"oci", "containerd"}
    assert doc["worker"]["oci"]["gcpolicy"] == [{"filters": [evil, "type==source.local"], "keepDuration": "60s"}]
    assert list(doc["registry"]) == [evil]
    assert doc["registry"][evil]["mirrors"] == [evil] and doc["registry"][evil]["http"] is True
    # the CA's directory on the host never comes from the value's characters
    assert doc["registry"][evil]["ca"][0].startswith("/etc/buildkit/registries/h-")


@pytest.mark.parametrize("evil", HOSTILE)
def test_compose_keeps_its_structure_whatever_the_values(host, evil):
    host.buildkit.image, host.buildkit.data_dir = evil, "/opt/x" + evil
    doc = yaml.safe_load(rendered(host, "docker-compose.yml"))
    svc = doc["services"]["buildkitd"]
    assert set(doc) == {"name", "services", "volumes"} and set(doc["services"]) == {"buildkitd"}
    assert set(svc) == {"image", "container_name", "restart", "network_mode", "entrypoint", "privileged", "volumes",
                        "healthcheck", "labels", "logging"}
    # Compose reads `$$` as a literal `$`: what it runs is exactly the value
    assert svc["image"].replace("$$", "$") == evil
    assert svc["volumes"][1].replace("$$", "$") == f"/opt/x{evil}/buildkitd.toml:/etc/buildkit/buildkitd.toml:ro"
    assert svc["network_mode"] == "host" and svc["privileged"] is True


def parse_unit(text: str) -> dict[str, dict[str, str]]:
    """A unit file as systemd reads it: [Section] lines and Key=Value lines, nothing else."""
    out: dict[str, dict[str, str]] = {}
    section = None
    for line in text.split("\n"):  # systemd breaks lines at \n only; any other break is inside a value
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = out.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition("=")
        assert sep and section is not None and key.isidentifier(), f"not a unit line: {line!r}"
        assert key not in section, f"{key} twice"
        section[key] = value
    return out


def systemd_words(value: str) -> list[str]:
    """Split an Exec*= command line by systemd's rules (quotes, C escapes, %% and $$)."""
    words, i = [], 0
    while i < len(value):
        if value[i] == " ":
            i += 1
            continue
        word = ""
        if value[i] == '"':
            i += 1
            while value[i] != '"':
                if value[i] == "\\":
                    nxt = value[i + 1]
                    width = {"x": 2, "u": 4, "U": 8}.get(nxt)
                    if width:
                        word += chr(int(value[i + 2:i + 2 + width], 16))
                        i += 2 + width
                        continue
                    word += {"n": "\n", "t": "\t"}.get(nxt, nxt)
                    i += 2
                    continue
                word += value[i]
                i += 1
            i += 1
        else:
            while i < len(value) and value[i] != " ":
                word += value[i]
                i += 1
        words.append(word.replace("%%", "%").replace("$$", "$"))
    return words


@pytest.mark.parametrize("evil", HOSTILE)
def test_prune_unit_keeps_its_structure_whatever_the_filters(host, evil):
    host.buildkit.prune_schedule = I.PruneSchedule(calendar="daily", filters=[evil], keep_storage=10**9)
    service = parse_unit(prune.render(host)[0].content.decode())
    assert set(service) == {"Unit", "Service"} and set(service["Service"]) == {"Type", "ExecStart"}
    assert systemd_words(service["Service"]["ExecStart"]) == prune.prune_command(host.buildkit.prune_schedule)
    assert systemd_words(service["Service"]["ExecStart"])[-2:] == ["--filter", evil]


def test_a_calendar_that_no_unit_can_carry_is_refused_and_specifiers_are_escaped(host):
    host.buildkit.prune_schedule = I.PruneSchedule(calendar="daily\nExecStartPre=/bin/true", all=True)
    with pytest.raises(render.RenderError, match="control character"):
        prune.render(host)
    host.buildkit.prune_schedule = I.PruneSchedule(calendar="%h", all=True)
    timer = parse_unit(prune.render(host)[1].content.decode())
    assert timer["Timer"]["OnCalendar"] == "%%h"


def run_with_stubs(tmp_path, script: str, env: dict[str, str], commands: list[str]) -> list[list[str]]:
    """Run a generated shell script with stub commands that record their argv; return the calls."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    for c in commands:
        p = stubs / c
        p.write_text(f'#!/bin/sh\nprintf "%s\\0" {c} "$@" >> {shlex.quote(str(log))}\nprintf "\\n\\0" >> '
                     f'{shlex.quote(str(log))}\nexit 0\n')
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    r = subprocess.run(["sh", "-c", script], env={"PATH": f"{stubs}:/usr/bin:/bin", **env}, capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    calls = [c.split("\0")[:-1] for c in log.read_text().split("\n\0")] if log.exists() else []
    return [c for c in calls if c]


def test_client_bootstrap_script_passes_hostile_values_as_single_words(tmp_path):
    client = I.Client(name="laptop", address="10.0.0.21", connection="local", ssh_address="10.0.0.21",
                      ssh_user="root", ssh_port=22, ssh_key=None, known_hosts="kh", connect_timeout=10,
                      builder="../../" + SHELL_BREAKOUT, default_builder=False)
    nodes = [{"name": "n" + SHELL_BREAKOUT, "endpoint": "tcp://" + SHELL_BREAKOUT, "servername": SHELL_BREAKOUT,
              "platforms": SHELL_BREAKOUT}]
    files = {n: b"pem" for n in clients.CERT_FILES}
    home = tmp_path / "home"
    home.mkdir()
    calls = run_with_stubs(tmp_path, clients.bootstrap_script(client, nodes, files, SHELL_BREAKOUT),
                           {"HOME": str(home)}, ["docker"])
    assert not (tmp_path / "pwned").exists() and not os.path.exists("/tmp/pwned")
    create = next(c for c in calls if c[1:3] == ["buildx", "create"])
    assert create[create.index("--name") + 1] == client.builder
    assert create[create.index("--node") + 1] == nodes[0]["name"]
    assert create[create.index("--platform") + 1] == SHELL_BREAKOUT
    assert create[-1] == nodes[0]["endpoint"]
    assert create[create.index("--driver-opt") + 1].endswith(f",servername={SHELL_BREAKOUT}")
    # the files stay inside ~/.docker/buildkit-ops/, in a directory named by a hash of the odd builder name
    written = [p for p in home.rglob("*") if p.is_file()]
    assert written and all(str(p).startswith(str(home / ".docker" / "buildkit-ops" / "h-")) for p in written)


def test_entrypoint_runs_the_fence_and_buildkitd_with_exactly_the_rendered_words(tmp_path):
    script = render.render(buildkitd.TEMPLATES / "entrypoint.sh.j2", "shell", privileges="privileged",
                           step_network="sandboxed",
                           bridge_name=SHELL_BREAKOUT)
    calls = run_with_stubs(tmp_path, script, {}, ["iptables", "ip6tables", "buildkitd"])
    fences = [c for c in calls if c[0] in ("iptables", "ip6tables")]
    assert fences and all(c[c.index("-i") + 1] == SHELL_BREAKOUT for c in fences)
    assert calls[-1] == ["buildkitd", "--config", "/etc/buildkit/buildkitd.toml"]
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("evil", HOSTILE[2:])
def test_firewall_commands_are_single_words(evil):
    steps = firewall.plan(firewall.parse({"ufw_present": "yes", "ufw_status": "", "ufw_rules": "", "ufw_ipv6": "yes"}), 22, 1234,
                          {"laptop": evil})
    script = next(s.script for s in steps if s.name.startswith("port"))
    assert shlex.split(script) == ["ufw", *firewall.client_rule(evil, 1234, "laptop")]


def test_shell_quote_survives_everything():
    for evil in HOSTILE:
        out = subprocess.run(["sh", "-c", "printf %s " + render.quote(evil.replace("\x00", ""))],
                             capture_output=True, text=True).stdout
        assert out == evil.replace("\x00", "")
