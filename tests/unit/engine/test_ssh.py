"""SSH to a machine: a known_hosts file paramiko cannot read (an @cert-authority or @revoked marker) is refused
with the file and the way on, never a traceback, and never by skipping the line (a @revoked one would then accept
the key it revokes). Nothing is connected to: the file is read first."""
from __future__ import annotations

import subprocess

import pytest

from buildkit_ops.engine import ssh


@pytest.mark.parametrize("marker", ["@cert-authority *.example.com", "@revoked *"])
def test_a_known_hosts_marker_is_a_clear_error(tmp_path, marker):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    pub = " ".join((tmp_path / "k.pub").read_text().split()[:2])
    kh = tmp_path / "known_hosts"
    kh.write_text(f"{marker} {pub}\n")
    with pytest.raises(ssh.RemoteError) as e:
        ssh.connect("build1", "127.0.0.1", "root", 1, str(tmp_path / "k"), str(kh), 1)
    message = str(e.value)
    assert f"{kh} has a line SSH here cannot read" in message and "@cert-authority and @revoked" in message
    assert "ssh-keyscan -p 1 127.0.0.1" in message
