"""provision's decisions before and around the runner: a host that cannot be reached gets nothing issued and is
reported unreachable while the others go on; an operator's role that cannot load stops the run before any host
is contacted. (The runner and the roles: tests/unit/engine, tests/unit/roles; provision on real hosts:
tests/lab.)"""
from __future__ import annotations

import dataclasses

import pytest
from unit_helpers import closed_port, ssh_key

from buildkit_ops import inventory as I
from buildkit_ops.engine.contract import Options
from buildkit_ops.engine.role_path import RoleError
from buildkit_ops.flows import provision
from buildkit_ops.pki import certs as pki
from buildkit_ops.report.results import Reporter


def test_an_unreachable_host_gets_nothing_issued_and_is_reported_unreachable(inv_path, tmp_path):
    inv = I.load(inv_path)
    key = ssh_key(tmp_path / "id_ecdsa")
    here = {n: dataclasses.replace(h, address="127.0.0.1", ssh_port=closed_port(), connect_timeout=2, ssh_key=key)
            for n, h in inv.hosts.items()}
    inv = dataclasses.replace(inv, hosts=here)
    results = provision.provision(inv, list(here.values()), Options(), Reporter(quiet=True))
    assert [(r.host, r.unreachable) for r in results] == [("build1", True), ("build2", True)]
    assert all("unreachable" in (r.error or "") and "check address and ssh_port" in (r.error or "") for r in results)
    assert not pki.server_paths(inv.pki_dir, "build1").crt.exists()


def test_an_operators_role_that_cannot_load_stops_before_any_host(inv_path):
    (inv_path.parent / "roles" / "hello").mkdir(parents=True)
    (inv_path.parent / "roles" / "hello" / "__init__.py").write_text("import nothing_of_that_name\n")
    inv = I.load(inv_path)
    with pytest.raises(RoleError, match=r"roles/hello/__init__.py: the role cannot be loaded: ModuleNotFoundError"):
        provision.provision(inv, list(inv.hosts.values()), Options(), Reporter(quiet=True))
