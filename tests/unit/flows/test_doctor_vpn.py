"""doctor's tunnel rungs, before TCP: the client's interface up, then a recent handshake with each build host
(none yet, or too long ago, says where to look); a live tunnel goes on to the rungs every client has."""
from __future__ import annotations

import datetime as dt

import yaml
from unit_helpers import GOOD, load_text

from buildkit_ops.flows import doctor
from buildkit_ops.pki import vpn_keys

HOST_KEY = "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
NOW = dt.datetime.now(dt.timezone.utc)


def inventory(tmp_path):
    data = yaml.safe_load(GOOD)
    data["all"]["vars"].update(vpn={"kind": "wireguard"}, pki_dir=str(tmp_path / "pki"))
    inv = load_text(tmp_path, yaml.safe_dump(data))
    vpn_keys.record(inv.pki_dir, "hosts", "build1", HOST_KEY)
    return inv


def first(inv, **found):
    return doctor.diagnose(inv, inv.clients["laptop"], {"now": "1000", **found}, NOW)[0]


def test_the_tunnels_rungs_come_first_and_say_where_to_look(tmp_path):
    inv = inventory(tmp_path)
    assert first(inv, vpn_if="down") == ("build1", "problem", "tunnel down: laptop has no bkops-vpn interface up; "
                                                              "run `invoke add-client laptop`")
    assert first(inv, vpn_if="up", vpn_handshakes=f"{HOST_KEY}\t0") == (
        "build1", "problem", "no tunnel: no handshake with build1 yet (UDP 51820 to 10.0.0.11 blocked on the way, or "
                             "build1 does not know laptop's key); run `invoke add-client laptop`")
    assert first(inv, vpn_if="up", vpn_handshakes=f"{HOST_KEY}\t500")[2].startswith(
        "no tunnel: no handshake with build1 for 500 s")
    # a live tunnel: on to TCP, to the host's tunnel address
    live = first(inv, vpn_if="up", vpn_handshakes=f"{HOST_KEY}\t990", tcp0="blocked")
    assert live[2].startswith("TCP blocked: laptop cannot connect to 10.213.0.1:1234")
