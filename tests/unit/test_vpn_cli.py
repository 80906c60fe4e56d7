"""rotate-certs --vpn-keys on the command line: one kind of machine at a time, never with --ca or --revoke-old,
refused before any host with a clear error; and without a VPN in the inventory, a clear error too."""
from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT


@pytest.mark.parametrize("args,said", [
    ([], "--vpn-keys goes with --host HOSTS or --client NAMES (one kind at a time)"),
    (["--host", "build1", "--client", "laptop"], "--vpn-keys goes with --host HOSTS or --client NAMES"),
    (["--client", "laptop", "--revoke-old"], "without --ca and --revoke-old"),
    (["--client", "laptop"], "there is no VPN in the inventory (all.vars.vpn): no key pair to rotate")])
def test_vpn_key_rotation_is_refused_with_what_to_do(args, said):
    r = subprocess.run([sys.executable, "-m", "invoke", "rotate-certs", "--vpn-keys", *args], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode != 0 and said in r.stderr and "Traceback" not in r.stderr, r.stderr
