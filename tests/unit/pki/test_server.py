"""A host's server certificate on the operator machine: issued once, named for every name of the host, reissued
when the names change or on rotation, and nothing written in check mode."""
from __future__ import annotations

import dataclasses

from buildkit_ops import inventory as I
from buildkit_ops.pki import certs as pki
from buildkit_ops.pki import server


def names(inv, host) -> list[str]:
    return pki.cert_sans(pki.load_cert(pki.server_paths(inv.pki_dir, host).crt))


def test_a_server_certificate_is_issued_once_and_reissued_when_the_names_change(inv_path):
    inv = I.load(inv_path)
    h = inv.hosts["build1"]
    [ca, cert] = server.ensure(inv, h, check=False)
    assert not ca.changed and cert.changed and "issued (missing)" in cert.detail
    assert sorted(names(inv, "build1")) == sorted(h.sans)
    [_, again] = server.ensure(inv, h, check=False)
    assert not again.changed
    renamed = dataclasses.replace(h, names=[*h.names, "build1.example.com"])
    [_, check] = server.ensure(inv, renamed, check=True)
    assert check.changed and check.detail.startswith("would issue") and "build1.example.com" not in names(inv, "build1")
    [_, done] = server.ensure(inv, renamed, check=False)
    assert done.changed and "build1.example.com" in names(inv, "build1")
    [_, rotated] = server.ensure(inv, renamed, check=False, force=True)
    assert rotated.changed and "rotation" in rotated.detail


def test_check_mode_without_a_ca_writes_nothing(inv_path, tmp_path):
    inv = dataclasses.replace(I.load(inv_path), pki_dir=tmp_path / "empty")
    steps = server.ensure(inv, inv.hosts["build1"], check=True)
    assert [s.changed for s in steps] == [True, True] and not (tmp_path / "empty").exists()
