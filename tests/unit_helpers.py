"""Helpers of the unit tests: a small valid inventory and ways to load it changed, and the key paths of a
parsed TOML document."""
from __future__ import annotations

import shlex
import socket
import stat
import subprocess
from typing import Any

import pytest
import yaml
from conftest import ROOT

from buildkit_ops import inventory as I
from buildkit_ops.pki import certs as pki

GOOD = """
all:
  vars:
    ssh_key: id
  children:
    buildhosts:
      hosts:
        build1:
          address: 10.0.0.11
    clients:
      hosts:
        laptop:
          address: 10.0.0.21
"""


def load_text(tmp_path, text):
    f = tmp_path / "inv.yml"
    f.write_text(text)
    return I.load(f)


def mutate(edit):
    data = yaml.safe_load(GOOD)
    edit(data)
    return yaml.safe_dump(data, sort_keys=False)


def client_values(**kw):
    """An edit of GOOD: these values on client laptop."""
    return lambda d: d["all"]["children"]["clients"]["hosts"]["laptop"].update(kw)


def top_values(**kw):
    """An edit of GOOD: these values in all.vars."""
    return lambda d: d["all"]["vars"].update(kw)


def refusal(tmp_path, edit) -> str:
    """The message loading GOOD changed by edit(data) is refused with (scratch path left out)."""
    with pytest.raises(I.InventoryError) as e:
        load_text(tmp_path, mutate(edit))
    return str(e.value).replace(str(tmp_path) + "/", "")



def keys(doc: dict[str, Any], prefix: str = "") -> set[str]:
    """Dotted key paths of a parsed TOML document; registries' names become `*`, arrays of tables flatten."""
    out: set[str] = set()
    for k, v in doc.items():
        path = f"{prefix}{k}"
        if prefix == "registry.":
            path = "registry.*"
        if isinstance(v, dict):
            out |= keys(v, path + ".")
        elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for x in v:
                out |= keys(x, path + ".")
        else:
            out.add(path)
    return out


# ------------------------------------------------------------------ hostile values (validation bypassed)

TOML_BREAKOUT = '"]\n[grpc]\naddress = ["tcp://0.0.0.0:9999"]\ninsecure-entitlements = ["security.insecure"]\n#'
YAML_BREAKOUT = '"\n    pid: host\n    privileged: true\n#${HOME}'
SYSTEMD_BREAKOUT = "x\\'\nExecStartPre=/bin/sh -c 'id > /tmp/pwned'\n% $HOME ;"
SHELL_BREAKOUT = "x'; touch /tmp/pwned; echo '\n$(id)`id`"
HOSTILE = [TOML_BREAKOUT, YAML_BREAKOUT, SYSTEMD_BREAKOUT, SHELL_BREAKOUT, "\x00\x7f\x1b[31m\u2028"]


# A /proc of a test's making, in namespaces of its own (network and mounts): br_netfilter's switch on, IPv6 on.
FAKE_PROC = ("mount -t tmpfs bkops-test-proc /proc && mkdir -p /proc/sys/net/bridge /proc/net && "
             "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables && touch /proc/net/if_inet6 && ")


def run_with_stubs(tmp_path, script: str, env: dict[str, str], commands: list[str],
                   isolated: bool = False) -> list[list[str]]:
    """Run a generated shell script with stub commands that record their argv; return the calls. `isolated`: in
    its own network and mount namespaces over FAKE_PROC (a script that would write the machine's settings)."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    for c in commands:
        p = stubs / c
        p.write_text(f'#!/bin/sh\nprintf "%s\\0" {c} "$@" >> {shlex.quote(str(log))}\nprintf "\\n\\0" >> '
                     f'{shlex.quote(str(log))}\nexit 0\n')
        p.chmod(p.stat().st_mode | stat.S_IEXEC)
    argv = ["unshare", "--net", "--mount", "sh", "-c", FAKE_PROC + script] if isolated else ["sh", "-c", script]
    r = subprocess.run(argv, env={"PATH": f"{stubs}:/usr/bin:/bin", **env}, capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    calls = [c.split("\0")[:-1] for c in log.read_text().split("\n\0")] if log.exists() else []
    return [c for c in calls if c]


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


# ------------------------------------------------------------------ plans

def _host():
    """build1 of the shipped inventory, with its file paths pointed at a scratch directory."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path
    tmp = Path(tempfile.mkdtemp(prefix="bkops-roles-"))
    atexit.register(shutil.rmtree, tmp, True)   # (the plans read the CA file while the tests run; gone after)
    (tmp / "registry-ca.crt").write_text("registry ca\n")
    text = (ROOT / "inventory.yml").read_text().replace(".lab/registry/ca.crt", str(tmp / "registry-ca.crt"))
    (tmp / "inventory.yml").write_text(text)
    return I.load(tmp / "inventory.yml").hosts["build1"]


HOST = _host()   # build1 of the shipped inventory


def file_facts(files, *overrides):
    """The files' facts as the host reports them; each override (path suffix, sha256, mode) changes one."""
    lines = []
    for f in files:
        sha, mode = f.sha256, f"{f.mode:o}"
        for override in (o for o in overrides if o and f.path.endswith(o[0])):
            sha, mode = override[1], override[2]
        lines.append(f"{sha} {mode} root:root {f.path}")
    return "\n".join(lines)


def changed(steps):
    return [(s.name, s.detail) for s in steps if s.changed]


def scripts(steps) -> str:
    return "\n".join(s.script for s in steps if s.changed)


# The facts the roles' facts.sh print on fresh cloud images (written from the releases' documented defaults: Ubuntu
# ships ufw (inactive, IPV6=yes), not Docker or qemu; Debian 12 ships none of them).
UBUNTU_2204 = {"os": "ubuntu 22.04 debian", "docker": "", "compose": "", "ufw_present": "yes",
               "ufw_status": "Status: inactive", "ufw_rules": "", "ufw_ipv6": "yes", "binfmt_mounted": "yes",
               "binfmt": "aarch64 absent", "qemu": "", "conn_leftovers": ""}
UBUNTU_2404 = {**UBUNTU_2204, "os": "ubuntu 24.04 debian"}
DEBIAN_12 = {**UBUNTU_2204, "os": "debian 12", "ufw_present": "no", "ufw_status": "", "ufw_ipv6": ""}


# ------------------------------------------------------------------ a machine that is not there

def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssh_key(path) -> str:
    """A real private key file (so that what fails is the connection, not the key)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    return str(path)


def inventory_with_tenants(tmp_path):
    """The lab's inventory with tenants red and blue on build1 (laptop is red's, a CI runner blue's), green on
    build2, a client of no tenant, and a CA."""
    data = yaml.safe_load((ROOT / "inventory.yml").read_text())
    data["all"]["vars"]["pki_dir"] = str(tmp_path / "pki")
    data["all"]["vars"]["buildkit"].pop("registries")
    data["all"]["vars"]["tenants"] = {"red": {"hosts": ["build1"], "buildkit": {"gc": {"keep_storage": "7GB"}}},
                                      "blue": {"hosts": ["build1", "build2"]}, "green": {"hosts": ["build2"]}}
    clients = data["all"]["children"]["clients"]["hosts"]
    clients["laptop"]["tenant"] = "red"
    clients.update({"ci1": {"address": "10.77.0.31", "connection": "none", "tenant": "blue"},
                    "dev": {"address": "10.77.0.41", "connection": "none"}})
    (tmp_path / "inventory.yml").write_text(yaml.safe_dump(data))
    inv = I.load(tmp_path / "inventory.yml")
    pki.ensure_ca(inv.pki_dir, 3650)
    return inv
