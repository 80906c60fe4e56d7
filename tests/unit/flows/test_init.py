"""bkops init: a new deployment's inventory documents every key and loads as it is written; a machine's host key
goes into known_hosts only when its fingerprint was pinned or confirmed; a pin that matches nothing, or a key not
confirmed, writes nothing; a second run keeps every file that is there; a hostile name or address is refused."""
from __future__ import annotations

import base64

import pytest

from buildkit_ops import inventory
from buildkit_ops.engine.host_keys import HostKey
from buildkit_ops.flows import init as init_flow
from buildkit_ops.inventory import schema

KEYS = {"10.77.0.11": [HostKey("10.77.0.11", "ssh-ed25519", base64.b64encode(b"build1-key").decode())],
        "10.77.0.21": [HostKey("10.77.0.21", "ssh-ed25519", base64.b64encode(b"laptop-key").decode())]}


def scan(address, port):
    return KEYS[address]


def run(tmp_path, pins=None, confirm=lambda name, keys: True, **kw):
    return init_flow.init(tmp_path / "team", {"build1": "10.77.0.11"}, {"laptop": "10.77.0.21"},
                          {"ssh_user": "deploy"}, 22, pins or {}, confirm, scan=scan, **kw)


def test_the_inventory_documents_every_key_and_loads_as_written(tmp_path):
    out = run(tmp_path)
    assert out["files"] == {"inventory.yml": "written", "known_hosts": "written", ".gitignore": "written"}
    text = (tmp_path / "team/inventory.yml").read_text()
    comments = "\n".join(line for line in text.splitlines() if line.strip().startswith("#"))
    for table in (schema.HOST_KEYS, schema.BUILDKIT_KEYS, schema.GC_KEYS, schema.CLIENT_KEYS, schema.ALL_VAR_KEYS):
        for key in table:
            assert f"{key}:" in comments, key
    assert ".lab/" not in text and "10.77.0.5" not in text and "lab.up" not in text   # (none of the lab's remarks)
    inv = inventory.load(tmp_path / "team/inventory.yml")
    assert inv.hosts["build1"].address == "10.77.0.11" and inv.hosts["build1"].ssh_user == "deploy"
    assert inv.hosts["build1"].known_hosts == str(tmp_path / "team/known_hosts")
    assert inv.clients["laptop"].address == "10.77.0.21"
    assert inv.hosts["build1"].buildkit.image == schema.DEFAULT_IMAGE
    assert ".pki/" in (tmp_path / "team/.gitignore").read_text()
    assert (tmp_path / "team/known_hosts").read_text() == "".join(k.line() + "\n" for k in KEYS["10.77.0.11"] +
                                                                   KEYS["10.77.0.21"])


def test_a_pinned_fingerprint_needs_no_question_and_a_wrong_one_writes_nothing(tmp_path):
    asked = []
    pins = {n: KEYS[a][0].fingerprint for n, a in (("build1", "10.77.0.11"), ("laptop", "10.77.0.21"))}
    run(tmp_path, pins=pins, confirm=lambda name, keys: asked.append(name) or False)
    assert asked == [] and (tmp_path / "team/known_hosts").exists()
    with pytest.raises(init_flow.InitError, match="shows no key with fingerprint SHA256:AAAA"):
        run(tmp_path / "other", pins={"build1": "SHA256:AAAA"})
    assert not (tmp_path / "other").exists()


def test_a_key_not_confirmed_writes_nothing(tmp_path):
    with pytest.raises(init_flow.InitError, match="build1's host key was not accepted: nothing was written"):
        run(tmp_path, confirm=lambda name, keys: False)
    assert not (tmp_path / "team").exists()


def test_a_second_run_keeps_every_file_that_is_there(tmp_path):
    run(tmp_path)
    (tmp_path / "team/inventory.yml").write_text((tmp_path / "team/inventory.yml").read_text() + "# mine\n")
    before = {p.name: p.read_text() for p in (tmp_path / "team").iterdir()}
    out = run(tmp_path, confirm=lambda name, keys: pytest.fail("asked again"))
    assert set(out["files"].values()) == {"kept"}
    assert {p.name: p.read_text() for p in (tmp_path / "team").iterdir()} == before


@pytest.mark.parametrize("hosts,message", [
    ({"build1": "10.77.0.11\n    role: admin"}, "--host build1="),
    ({"build 1": "10.77.0.11"}, "--host build 1="),
    ({}, "no build host"),
])
def test_a_hostile_or_missing_machine_is_refused(tmp_path, hosts, message):
    with pytest.raises(init_flow.InitError, match=message):
        init_flow.init(tmp_path / "team", hosts, {}, {}, 22, {}, lambda n, k: True, scan=scan)
    assert not (tmp_path / "team").exists()


def test_name_value_options_are_checked():
    assert init_flow.pairs("--host", ["a=1.2.3.4"]) == {"a": "1.2.3.4"}
    for bad in (["a"], ["=1.2.3.4"], ["a=1", "a=2"]):
        with pytest.raises(init_flow.InitError):
            init_flow.pairs("--host", bad)


def test_a_fingerprint_is_what_ssh_keygen_prints():
    import subprocess
    key = HostKey("h", "ssh-ed25519", "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
    r = subprocess.run(["ssh-keygen", "-lf", "-"], input=f"{key.kind} {key.blob}\n", capture_output=True, text=True)
    assert r.stdout.split()[1] == key.fingerprint


def test_set_writes_inventory_values_and_the_schema_checks_them_before_anything(tmp_path):
    s = init_flow.settings(["buildkit.max_parallelism=8", "buildkit.gc.keep_storage=20GB", "cert_days=400",
                            'buildkit.registries={"reg.example:5000": {ca: /srv/ca.crt}}'])
    assert s == {"buildkit": {"max_parallelism": 8, "gc": {"keep_storage": "20GB"},
                              "registries": {"reg.example:5000": {"ca": "/srv/ca.crt"}}}, "cert_days": 400}
    init_flow.init(tmp_path / "team", {"build1": "10.77.0.11"}, {}, s, 22, {}, lambda n, k: True, scan=scan)
    inv = inventory.load(tmp_path / "team/inventory.yml")
    bk = inv.hosts["build1"].buildkit
    assert (bk.max_parallelism, bk.gc.keep_storage, inv.cert_days) == (8, 20 * 10**9, 400)
    assert list(bk.registries) == ["reg.example:5000"]
    with pytest.raises(init_flow.InitError, match="max_parallelism: must be a whole number from 1 to 1024"):
        init_flow.init(tmp_path / "bad", {"build1": "10.77.0.11"}, {},
                       init_flow.settings(["buildkit.max_parallelism=lots"]), 22, {}, lambda n, k: True, scan=scan)
    assert not (tmp_path / "bad").exists()
    for bad in (["buildkit"], ["Buildkit.x=1"], ["a.b.c.d=1"]):
        with pytest.raises(init_flow.InitError):
            init_flow.settings(bad)
