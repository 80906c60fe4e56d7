"""provision's decisions before and around the runner: a host that cannot be reached gets nothing issued and is
reported unreachable while the others go on; an operator's role that cannot load stops the run before any host
is contacted. (The runner and the roles: tests/unit/engine, tests/unit/roles; provision on real hosts:
tests/lab.)"""
from __future__ import annotations

import dataclasses
import socket

import pytest

from buildkit_ops import inventory as I
from buildkit_ops.engine.contract import Options
from buildkit_ops.engine.role_path import RoleError
from buildkit_ops.flows import provision
from buildkit_ops.pki import certs as pki
from buildkit_ops.report.results import Reporter


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ssh_key(path) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                       serialization.NoEncryption()))
    return str(path)


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
