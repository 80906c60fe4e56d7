"""Inventory validation: every bad input names the file, the key path, the problem and the fix."""
from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import ROOT
from unit_helpers import GOOD, load_text, mutate, refusal

from buildkit_ops import inventory as I
from buildkit_ops.inventory import values


def test_the_shipped_inventory_is_valid_and_describes_the_lab():
    inv = I.load(ROOT / "inventory.yml")
    assert set(inv.hosts) == {"build1", "build2"}
    assert inv.hosts["build1"].sans == ["10.77.0.11", "build1.lab", "build1", "fleet.buildkit-ops.invalid"]
    assert inv.hosts["build1"].buildkit.gc.policies[0].keep_duration == 48 * 3600
    assert inv.clients["laptop"].address == "10.77.0.21"


def test_defaults_apply(tmp_path):
    inv = load_text(tmp_path, GOOD)
    h = inv.hosts["build1"]
    assert (h.ssh_user, h.ssh_port, h.buildkit.port, h.buildkit.privileges) == ("root", 22, 1234, "privileged")
    assert h.buildkit.gc.keep_storage == 10 * 10**9
    assert len(h.buildkit.gc.policies) == 4
    assert inv.cert_days == 825


def test_host_values_override_group_and_all_vars(tmp_path):
    def edit(d):
        d["all"]["vars"]["buildkit"] = {"port": 2000, "gc": {"keep_storage": "1GB"}}
        d["all"]["children"]["buildhosts"]["vars"] = {"buildkit": {"max_parallelism": 8}}
        d["all"]["children"]["buildhosts"]["hosts"]["build1"]["buildkit"] = {"port": 3000}
    b = load_text(tmp_path, mutate(edit)).hosts["build1"].buildkit
    assert (b.port, b.max_parallelism, b.gc.keep_storage) == (3000, 8, 10**9)


def test_build_limits_have_a_default_for_every_client_and_a_value_per_client(tmp_path):
    def edit(d):
        clients = d["all"]["children"]["clients"]
        clients["vars"] = {"limits": {"builds": 2}}
        clients["hosts"]["laptop2"] = {"address": "10.0.0.22", "limits": {"builds": 1}}
    inv = load_text(tmp_path, mutate(edit))
    assert {n: c.limits.builds for n, c in inv.clients.items()} == {"laptop": 2, "laptop2": 1}
    assert load_text(tmp_path, GOOD).clients["laptop"].limits.builds == 0   # (no limit)


def test_groups_select_hosts(tmp_path):
    def edit(d):
        d["all"]["children"]["buildhosts"]["hosts"]["build2"] = {"address": "10.0.0.12"}
        d["all"]["children"]["buildhosts"]["children"] = {"eu": {"hosts": {"build2": {}}}}
    inv = load_text(tmp_path, mutate(edit))
    assert [h.name for h in inv.select("eu")] == ["build2"]
    assert [h.name for h in inv.select("build1,eu")] == ["build1", "build2"]
    assert [h.name for h in inv.select(None)] == ["build1", "build2"]


BAD = [
    ("missing address",
     lambda d: d["all"]["children"]["buildhosts"]["hosts"]["build1"].pop("address"),
     "inv.yml: all.children.buildhosts.hosts.build1.address: is required and missing\n"
     "  fix: add `address:` to all.children.buildhosts.hosts.build1"),
    ("bad address",
     lambda d: d["all"]["children"]["buildhosts"]["hosts"]["build1"].update(address="10.0.0.300 x"),
     "inv.yml: all.children.buildhosts.hosts.build1.address: '10.0.0.300 x' is not an IP address or DNS name\n"
     "  fix: write an address such as 10.0.0.5 or build1.example.com"),
    ("port out of range",
     lambda d: d["all"]["vars"].update(buildkit={"port": 70000}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.port: must be a TCP port between 1 and 65535, "
     "got 70000\n  fix: write a number such as 1234"),
    ("typo in a key",
     lambda d: d["all"]["vars"].update(buildkit={"max_paralelism": 2}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.max_paralelism: unknown key 'max_paralelism'\n"
     "  fix: did you mean 'max_parallelism'? allowed keys here: ci_port, data_dir, debug_address, gateway_idle_timeout, "
     "gateway_image, gateway_image_archive, gc, history_max_age, history_max_entries, image, image_archive, max_parallelism, port, privileges, prune_schedule, registries, "
     "step_network, version"),
    ("bad size",
     lambda d: d["all"]["vars"].update(buildkit={"gc": {"keep_storage": "ten gigs"}}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.keep_storage: 'ten gigs' is not a disk space\n"
     "  fix: write a size such as 10GB or 512MiB, or a share of the disk such as \"10%\""),
    ("bad duration in a GC rule",
     lambda d: d["all"]["vars"].update(buildkit={"gc": {"policies": [{"keep_duration": "2 days"}]}}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.gc.policies[0].keep_duration: '2 days' is not a "
     "duration\n  fix: write a duration such as 48h, 30m or 7d"),
    ("bad privileges value",
     lambda d: d["all"]["vars"].update(buildkit={"privileges": "root"}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.privileges: 'root' is not allowed\n"
     "  fix: use one of: privileged, unprivileged-lab"),
    ("no build hosts group",
     lambda d: d["all"]["children"].pop("buildhosts"),
     "inv.yml: all.children.buildhosts: no build hosts group\n"
     "  fix: add `buildhosts:` with `hosts:` under all.children"),
    ("invalid host name",
     lambda d: d["all"]["children"]["buildhosts"]["hosts"].update({"Build_1": {"address": "10.0.0.9"}}),
     "inv.yml: all.children.buildhosts.hosts.Build_1: 'Build_1' is not a valid host name\n"
     "  fix: use lower-case letters, digits and dashes, starting with a letter or digit"),
    ("two clients, one address",
     lambda d: d["all"]["children"]["clients"]["hosts"].update({"ci": {"address": "10.0.0.21"}}),
     "inv.yml: all.children.clients.hosts.ci.address: 10.0.0.21 is already the address of client 'laptop'\n"
     "  fix: give each client its own address (firewall rules are per address)"),
    ("cert_days too long",
     lambda d: d["all"]["vars"].update(cert_days=1000),
     "inv.yml: all.vars.cert_days: 1000 is out of range\n"
     "  fix: use 1 to 825 days (clients such as macOS reject longer-lived certificates)"),
    ("renewal window as long as the validity",
     lambda d: d["all"]["vars"].update(cert_days=30, cert_renew_days=30),
     "inv.yml: all.vars.cert_renew_days: 30 is not below cert_days (30): every run would reissue every "
     "certificate\n  fix: make cert_renew_days smaller than cert_days, e.g. 30 with 825"),
    ("client connection",
     lambda d: d["all"]["children"]["clients"]["hosts"]["laptop"].update(connection="winrm"),
     "inv.yml: all.children.clients.hosts.laptop.connection: 'winrm' is not allowed\n  fix: use one of: local, ssh, none"),
    ("hosts is a list",
     lambda d: d["all"]["children"]["buildhosts"].update(hosts=["build1"]),
     "inv.yml: all.children.buildhosts.hosts: must be a mapping of keys, got list ['build1']\n"
     "  fix: write it as `key: value` lines indented under it"),
    ("prune schedule without a limit",
     lambda d: d["all"]["vars"].update(buildkit={"prune_schedule": {"calendar": "daily"}}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.prune_schedule: says when to prune but not what\n"
     "  fix: add keep_storage (e.g. 20GB), keep_duration (e.g. 7d), filters or all"),
    ("build limit out of range",
     lambda d: d["all"]["children"]["clients"]["hosts"]["laptop"].update(limits={"builds": -1}),
     "inv.yml: all.children.clients.hosts.laptop.limits.builds: must be a whole number from 0 to 1000, got -1\n"
     "  fix: write a number from 0 to 1000, without quotes"),
    ("unknown limit",
     lambda d: d["all"]["children"]["clients"]["hosts"]["laptop"].update(limits={"cpu": 2}),
     "inv.yml: all.children.clients.hosts.laptop.limits.cpu: unknown key 'cpu'\n"
     "  fix: allowed keys here: builds, queue"),
    ("a queue without a build limit",
     lambda d: d["all"]["children"]["clients"]["hosts"]["laptop"].update(limits={"queue": 3}),
     "inv.yml: all.children.clients.hosts.laptop.limits.queue: limits how many builds wait, but no build waits "
     "without `builds`\n  fix: add `builds: N` (the most that run at once), or remove `queue:`"),
    ("same port for SSH and BuildKit",
     lambda d: d["all"]["vars"].update(buildkit={"port": 22}),
     "inv.yml: all.children.buildhosts.hosts.build1.buildkit.port: the BuildKit port equals the SSH port\n"
     "  fix: pick another port, e.g. 1234"),
]


@pytest.mark.parametrize("what,edit,message", BAD, ids=[b[0] for b in BAD])
def test_bad_inventory_gives_exact_error(tmp_path, what, edit, message):
    assert refusal(tmp_path, edit) == message


def test_invalid_yaml_names_the_line(tmp_path):
    with pytest.raises(I.InventoryError) as e:
        load_text(tmp_path, "all:\n  vars: [\n")
    assert "is not valid YAML" in str(e.value) and "line 3" in str(e.value)


def test_unknown_host_lists_the_known_ones(tmp_path):
    inv = load_text(tmp_path, GOOD)
    with pytest.raises(I.InventoryError) as e:
        inv.select("build9")
    assert str(e.value).endswith("--host build9: no build host or group named 'build9'\n  fix: use one of: "
                                 "build1, buildhosts")


def test_cli_exits_nonzero_with_file_key_and_fix(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(mutate(lambda d: d["all"]["vars"].update(buildkit={"port": "x"})))
    r = subprocess.run([sys.executable, "-m", "invoke", "provision", "--check", "-i", str(bad)], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{bad}: all.children.buildhosts.hosts.build1.buildkit.port: must be a TCP port" in r.stderr
    assert "fix: write a number such as 1234" in r.stderr


@pytest.mark.parametrize("text,value", [("512MB", 512 * 10**6), ("2GiB", 2 * 2**30), (1024, 1024), ("10 GB", 10**10)])
def test_parse_size(text, value):
    assert values.parse_size(text) == value


@pytest.mark.parametrize("text,value", [("48h", 172800), ("30m", 1800), ("1h30m", 5400), ("7d", 604800)])
def test_parse_duration(text, value):
    assert values.parse_duration(text) == value




def test_a_default_path_is_beside_the_inventory_as_a_written_one_is(tmp_path):
    def edit(d):
        d["all"]["vars"].pop("pki_dir", None)
    inv = load_text(tmp_path, mutate(edit))
    assert inv.pki_dir == tmp_path / ".pki"
