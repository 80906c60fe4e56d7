"""The gateway's per-client files, exactly: the refusals (most specific first), the map of roles above developer,
each certificate name's role (a still-valid certificate of a client left out of the inventory keeps building as a
developer), and the build limits."""
from __future__ import annotations

import pytest
from unit_helpers import load_text, mutate

from buildkit_ops.engine.render import RenderError
from buildkit_ops.roles.gateway import files as G

ADMIN = "/moby.buildkit.v1.Control/"


def test_refusals_name_the_client_the_method_and_the_role_it_needs_most_specific_first():
    got = [(r.file, r.client, r.method, r.message) for r in G.refusals({"ann": "developer", "boss": "admin",
                                                                          "op": "operator"})]
    ann = [(f"denied-ann-{m}.http", "ann", m, f"ann (role developer) may not call {ADMIN}{m}: it needs role admin")
           for m in G.ADMIN_METHODS]
    anyone = [(f"denied-any-{m}.http", None, m, f"this certificate (role developer) may not call {ADMIN}{m}: it "
               f"needs role admin") for m in G.ADMIN_METHODS]
    assert got == [*ann, ("denied-ann.http", "ann", None, "ann (role developer) may not call this method: no role "
                                                          "may call it"),
                   *anyone, ("denied-any.http", None, None, "no role may call this method")]
    assert G.ADMIN_METHODS == ("DiskUsage", "Prune", "ListenBuildHistory", "UpdateBuildHistory")
    with pytest.raises(RenderError, match="cannot be written into the gateway's configuration"):
        G.refusals({"a\nb": "developer"})


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
    assert G.client_limits(inv) == {"laptop": 2}
    assert G.limits_map({"laptop": 2, "ci": 10}) == b"ci 10\nlaptop 2\n"
    with pytest.raises(RenderError):
        G.limits_map({"a b": 1})
