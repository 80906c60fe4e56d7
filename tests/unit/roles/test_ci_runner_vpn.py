"""A CI runner with a VPN: its key pair made once on the operator machine in its 0700 folder (the private key
0600, never printed), its tunnel configuration a CI secret holding that key and one peer per build host, and the
snippets bringing the tunnel up before the builder."""
from __future__ import annotations

import base64
import stat
import subprocess

import yaml
from unit_helpers import GOOD, load_text

from buildkit_ops.engine.contract import Options
from buildkit_ops.fleet.nodes import Node
from buildkit_ops.pki import vpn_keys
from buildkit_ops.roles.ci_runner import exports as ci_exports
from buildkit_ops.roles.ci_runner import prepare
from buildkit_ops.roles.ci_runner import snippets as ci_snippets

NODES = [Node("buildkit-ops-build1", "tcp://10.213.0.1:1234", "10.213.0.1", "")]
HOST_KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="


def test_a_runners_key_pair_is_made_once_here_and_only_its_public_half_is_kept_with_the_pki(tmp_path):
    path = tmp_path / "ci" / "r1" / "wireguard.key"
    public = vpn_keys.local_pair(path)
    assert vpn_keys.is_key(public) and stat.S_IMODE(path.stat().st_mode) == 0o600
    private = path.read_text().strip()
    assert len(base64.b64decode(private)) == 32 and private != public
    assert vpn_keys.local_pair(path) == public and path.read_text().strip() == private      # made once


def with_vpn_and_a_machine_out_of_reach(tmp_path, name: str, address: str):
    """The shipped inventory with a WireGuard VPN and a client of `connection: none` (build1's key known)."""
    data = yaml.safe_load(GOOD)
    data["all"]["vars"].update(vpn={"kind": "wireguard"}, pki_dir=str(tmp_path / "pki"))
    data["all"]["children"]["clients"]["hosts"][name] = {"address": address, "connection": "none"}
    inv = load_text(tmp_path, yaml.safe_dump(data))
    vpn_keys.record(inv.pki_dir, "hosts", "build1", HOST_KEY)
    return inv


def test_the_runners_folder_gets_its_tunnel_configuration_as_a_secret_and_snippets_that_use_it(tmp_path):
    inv = with_vpn_and_a_machine_out_of_reach(tmp_path, "ci1", "10.0.0.31")
    runner = inv.clients["ci1"]
    private_path = ci_exports.folder(inv, runner) / ci_exports.VPN_KEY
    vpn_keys.local_pair(private_path)
    files = {f.path.rsplit("/", 1)[1]: f for f in prepare(inv, runner, Options())}
    conf = files["bkops-vpn.conf"]
    assert conf.secret and conf.mode == 0o600
    text = conf.content.decode()
    assert f"PrivateKey = {private_path.read_text().strip()}" in text and "PostUp" not in text
    assert f"PublicKey = {HOST_KEY}" in text and "Endpoint = 10.0.0.11:51820" in text
    assert f"Address = {runner.vpn_address}/24" in text
    github = yaml.safe_load(files["github-actions.yml"].content)
    assert github[0]["env"] == {"CONF": "${{ secrets.BUILDKIT_OPS_WIREGUARD }}"} and "wg-quick up bkops-vpn" in \
        github[0]["run"] and github[1]["uses"] == ci_snippets.SETUP_BUILDX
    gitlab = yaml.safe_load(files["gitlab-ci.yml"].content)[".buildkit-ops"]["before_script"]
    assert gitlab[:4] == ["mkdir -p /etc/wireguard", "install -m 600 /dev/null /etc/wireguard/bkops-vpn.conf",
                          'cat "$BUILDKIT_OPS_WIREGUARD" > /etc/wireguard/bkops-vpn.conf', "wg-quick up bkops-vpn"]
    # without a VPN: the three secrets as before, no tunnel anywhere
    assert "wg-quick" not in ci_snippets.github_actions(NODES) + ci_snippets.gitlab_ci(runner, NODES)


# What the WireGuard apps of macOS and Windows take in an imported file: wg-quick's format without its script
# hooks (PreUp, PostUp, ... are refused by the App Store app and need a registry switch on Windows).
APP_KEYS = {"Interface": {"PrivateKey", "Address", "ListenPort", "DNS", "MTU"},
            "Peer": {"PublicKey", "PresharedKey", "AllowedIPs", "Endpoint", "PersistentKeepalive"}}


def test_a_developers_macos_or_windows_machine_gets_a_file_the_wireguard_app_imports_and_a_builder_script(tmp_path):
    inv = with_vpn_and_a_machine_out_of_reach(tmp_path, "mac1", "10.0.0.32")
    mac = inv.clients["mac1"]
    vpn_keys.local_pair(ci_exports.folder(inv, mac) / ci_exports.VPN_KEY)
    files = {f.path.rsplit("/", 1)[1]: f for f in prepare(inv, mac, Options())}
    section, seen = None, {}
    for line in files["bkops-vpn.conf"].content.decode().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            seen.setdefault(section, 0)
            seen[section] += 1
        elif line and not line.startswith("#"):
            key, sep, value = line.partition(" = ")
            assert sep and value and key in APP_KEYS[section], line
    assert seen == {"Interface": 1, "Peer": 1}
    # the builder's commands, run in the copied folder against a stand-in `docker` that prints its arguments
    script = files["buildx-builder.sh"]
    assert script.mode == 0o600 and "Import tunnel(s) from file" in script.content.decode()
    copy = tmp_path / "on-the-mac"
    copy.mkdir()
    (copy / "buildx-builder.sh").write_bytes(script.content)
    (tmp_path / "docker").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done; echo --\n')
    (tmp_path / "docker").chmod(0o755)
    out = subprocess.run(["sh", str(copy / "buildx-builder.sh")], env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
                         capture_output=True, text=True, check=True).stdout
    create = out.split("--\n")[0].split("\n")
    assert create[:2] == ["buildx", "create"] and \
        f"cacert={copy}/ca.pem,cert={copy}/cert.pem,key={copy}/key.pem,servername=" in "\n".join(create)
    assert out.split("--\n")[-2].split() == ["buildx", "use", mac.builder]
