"""The gateway's per-client files, exactly: the answer to a tenant not on the host, the map of roles above developer,
each certificate name's role (a still-valid certificate of a client left out of the inventory keeps building as a
developer), and the build limits."""
from __future__ import annotations

import pytest
from unit_helpers import load_text, mutate

from buildkit_ops.engine.render import RenderError
from buildkit_ops.inventory.model import Limits
from buildkit_ops.roles.gateway import files as G


def test_a_tenant_not_here_is_answered_unavailable_so_that_the_builder_tries_its_next_node():
    red, fleet = G.absent_refusal("red"), G.absent_refusal("default")
    assert (red.file, fleet.file) == ("absent-red.http", "absent-default.http")
    reply = G.absent_response(red.message).decode()
    assert reply == ("HTTP/1.1 200 OK\r\ncontent-type: application/grpc\r\ngrpc-status: 14\r\n"
                     "grpc-message: tenant red has no buildkitd on this host: build on one of its hosts\r\n"
                     "content-length: 0\r\n\r\n")
    assert fleet.message == "the fleet's buildkitd is not behind this gateway (it serves one tenant's): build on the fleet's"
    with pytest.raises(RenderError, match="cannot be written into the gateway's configuration"):
        G.absent_refusal("a\nb")


def test_the_client_map_holds_the_roles_above_developer_one_word_a_line():
    assert G.clients_map({"ann": "developer", "boss": "admin", "op": "operator"}) == b"boss admin\nop operator\n"
    assert G.clients_map({}) == b""
    for bad in ({"boss": "root"}, {"bo ss": "admin"}, {"-x": "admin"}):
        with pytest.raises(RenderError, match="cannot be written into the gateway's (client map|configuration)"):
            G.clients_map(bad)


def test_each_certificate_names_role_and_the_limits(tmp_path):
    def edit(d):
        hosts = d["all"]["children"]["clients"]["hosts"]
        hosts["laptop"].update(role="admin", limits={"builds": 2})
        hosts["laptop2"] = {"address": "10.0.0.22"}
    inv = load_text(tmp_path, mutate(edit))
    for name in ("stray", "not a word"):            # a valid certificate of a client left out of the inventory
        (inv.pki_dir / "clients" / name).mkdir(parents=True)
        (inv.pki_dir / "clients" / name / "client.crt").write_text("x")
    assert G.client_roles(inv) == {"laptop": "admin", "laptop2": "developer", "stray": "developer",
                                   "buildkit-ops-operator": "operator"}
    assert G.client_limits(inv) == {"laptop": Limits(2)}
    assert G.limits_map({"laptop": Limits(2), "ci": Limits(10, 3)}) == b"ci 10\nlaptop 2\n"
    assert G.queues_map({"laptop": Limits(2), "ci": Limits(10, 3)}) == b"ci 3\n"
    with pytest.raises(RenderError):
        G.limits_map({"a b": Limits(1)})
