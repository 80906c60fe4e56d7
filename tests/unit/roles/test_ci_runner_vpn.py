"""A CI runner with a VPN: its key pair made once on the operator machine in its 0700 folder (the private key
0600, never printed), its tunnel configuration a CI secret holding that key and one peer per build host, and the
snippets bringing the tunnel up before the builder."""
from __future__ import annotations

import base64
import stat

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


def test_the_runners_folder_gets_its_tunnel_configuration_as_a_secret_and_snippets_that_use_it(tmp_path):
    data = yaml.safe_load(GOOD)
    data["all"]["vars"].update(vpn={"kind": "wireguard"}, pki_dir=str(tmp_path / "pki"))
    data["all"]["children"]["clients"]["hosts"]["ci1"] = {"address": "10.0.0.31", "connection": "none"}
    inv = load_text(tmp_path, yaml.safe_dump(data))
    vpn_keys.record(inv.pki_dir, "hosts", "build1", HOST_KEY)
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
