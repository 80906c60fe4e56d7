"""The gateway's per-client files, exactly: the answer to a tenant not on the host, the map of roles above developer,
each certificate name's role (a still-valid certificate of a client left out of the inventory keeps building as a
developer), and the build limits; and the same set of files for a team of 2 and of 230."""
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


def test_the_gateways_files_are_the_same_set_for_2_and_230_clients_whatever_their_roles_and_limits(tmp_path):
    def team(n):
        def edit(d):
            d["all"]["vars"]["tenants"] = {"red": {}}
            hosts = d["all"]["children"]["clients"]["hosts"]
            for i in range(n - 1):
                hosts[f"dev{i:03d}"] = {"address": f"10.77.{1 + i // 250}.{1 + i % 250}", "connection": "none",
                                        "role": "admin" if i % 10 == 0 else "developer",
                                        **({"limits": {"builds": 2}} if i % 3 == 0 else {}),
                                        **({"tenant": "red"} if i % 4 == 0 else {})}
        folder = tmp_path / str(n)
        folder.mkdir()
        inv = load_text(folder, mutate(edit))
        h = inv.hosts["build1"]
        files = G.render(h, {"ca.crt": b"ca\n", "server.crt": b"crt\n", "server.key": b"key\n"}, b"crl\n",
                         G.client_roles(inv), G.client_limits(inv), "/run/buildkit-ops",
                         tenants=G.routes(inv, {"red": "/run/buildkit/tenants/red/buildkitd.sock"}))
        return inv, files
    few, many = team(2), team(230)
    assert len(many[0].clients) == 230
    assert sorted(f.path for f in few[1]) == sorted(f.path for f in many[1]) and len(many[1]) <= 21
    # (what differs is inside the maps: a line per client above developer, per limit, per tenant)
    tenants_map = next(f for f in many[1] if f.path.endswith("tenants.map")).content
    assert tenants_map.count(b"\n") == len([c for c in many[0].clients.values() if c.tenant])


def test_the_room_of_a_host_is_a_map_so_that_a_new_max_parallelism_needs_no_reload():
    assert G.room_map(4) == b"host 4\n" and "room.map" in G.IN_PLACE
