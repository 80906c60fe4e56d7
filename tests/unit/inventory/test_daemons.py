"""The daemons of a host (the inventory's domain type): the fleet's first, each tenant's by name with its own slot,
and a tenant's daemon found by name (or the fleet's for no tenant and `default`)."""
from __future__ import annotations

from unit_helpers import load_text, mutate

from buildkit_ops.inventory import daemons as D


def two_tenants(d):
    d["all"]["vars"]["tenants"] = {"red": {"hosts": ["build1"]}, "blue": {"hosts": ["build1"]}}


def test_the_daemons_of_a_host_and_a_tenants_found_by_name(tmp_path):
    inv = load_text(tmp_path, mutate(two_tenants))
    h = inv.hosts["build1"]
    ds = D.daemons(inv, h)
    assert [d.instance for d in ds] == [None, "blue", "red"] and [d.label for d in ds] == ["default", "blue", "red"]
    assert ds[0] == D.fleet(h) and [d.slot for d in ds[1:]] == [inv.tenants["blue"].slot, inv.tenants["red"].slot]
    assert ds[1].buildkit == inv.tenants["blue"].buildkit["build1"]
    assert D.of_tenant(inv, h, None) == D.of_tenant(inv, h, "default") == D.fleet(h)
    assert D.of_tenant(inv, h, "red") == ds[2] and D.of_tenant(inv, h, "green") is None
    assert ds[2].ctl == "docker exec buildkitd-red buildctl --addr unix:///run/buildkit/buildkitd.sock"
    # what is left of a tenant no longer placed here is found by its names alone
    gone = D.tenant_daemon(h, "old")
    assert (gone.container, gone.volume, gone.files_dir, gone.socket_dir, gone.buildkit) == (
        "buildkitd-old", "buildkit-cache-old", "/opt/buildkit-ops/tenants/old", "/run/buildkit-ops/tenants/old",
        h.buildkit)
