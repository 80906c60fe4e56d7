"""The roles applied once per daemon (buildkitd, prune): the fleet's daemon is the default instance and keeps the
names it always had; each tenant's has names, files, socket, bridge and subnet of its own. Whatever one daemon
gets, every daemon gets: planned by the same code, each restarted alone by its own handler, every one by a
change that concerns them all (a new emulator). Removal is a state the default instance plans. The fleet's files
are compared with a fixed reference (reference/), with and without tenants."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from unit_helpers import file_facts, load_text, mutate

from buildkit_ops.engine import role_path, runner
from buildkit_ops.engine.contract import Options, play_key
from buildkit_ops.engine.render import parse_file_states
from buildkit_ops.inventory.daemons import daemons, fleet
from buildkit_ops.roles import prune
from buildkit_ops.roles.buildkitd.exports import RESTART, BuildkitdFacts, render_files
from buildkit_ops.roles.buildkitd.facts import Container
from buildkit_ops.roles.buildkitd.files import config_hash
from buildkit_ops.roles.emulation import EmulationFacts
from buildkit_ops.roles.gateway import files as gateway_files

REFERENCE = Path(__file__).parent / "reference"
TLS = {"ca.crt": b"ca\n", "server.crt": b"crt\n", "server.key": b"key\n"}


def with_tenants(d):
    d["all"]["vars"]["tenants"] = {"red": {"buildkit": {"max_parallelism": 2,
                                                        "prune_schedule": {"calendar": "daily", "all": True},
                                                        "gc": {"policies": [{"all": True, "max_used": "5GB"}]}}},
                                   "blue": {"hosts": ["build2"]}}
    d["all"]["children"]["buildhosts"]["hosts"]["build2"] = {"address": "10.0.0.12"}
    d["all"]["children"]["clients"]["hosts"]["laptop"]["tenant"] = "red"
    d["all"]["children"]["clients"]["hosts"]["laptop2"] = {"address": "10.0.0.22", "tenant": "blue"}


def setup(tmp_path, edit=with_tenants):
    inv = load_text(tmp_path, mutate(edit))
    return inv, inv.hosts["build1"]


def test_the_fleets_daemon_keeps_its_names_and_a_tenants_are_its_own(tmp_path):
    inv, h = setup(tmp_path)
    f, red = daemons(inv, h)
    assert f.instance is None and red.instance == "red"
    assert (f.container, f.volume, f.project, f.files_dir, f.socket_dir, f.bridge, f.subnet) == (
        "buildkitd", "buildkit-cache", "buildkit-ops", "/opt/buildkit-ops", "/run/buildkit-ops", "buildkit0",
        "10.10.0.0/16")
    assert (red.container, red.volume, red.project, red.files_dir, red.socket_dir) == (
        "buildkitd-red", "buildkit-cache-red", "buildkit-ops-tenant-red", "/opt/buildkit-ops/tenants/red",
        "/run/buildkit-ops/tenants/red")
    assert red.subnet == f"10.11.{red.slot}.0/24" and red.bridge == f"buildkit-t{red.slot}"
    assert red.gateway_socket == "/run/buildkit/tenants/red/buildkitd.sock"


def test_a_tenants_files_name_its_own_volume_socket_bridge_and_settings(tmp_path):
    inv, h = setup(tmp_path)
    red = daemons(inv, h)[1]
    out = {f.path.rsplit("/", 1)[1]: f.content.decode() for f in render_files(h, None, red)}
    assert set(out) == {"docker-compose.yml", "buildkitd.toml", "entrypoint.sh", "fence.sh"}
    compose = yaml.safe_load(out["docker-compose.yml"])
    svc = compose["services"]["buildkitd"]
    assert compose["name"] == "buildkit-ops-tenant-red" and svc["container_name"] == "buildkitd-red"
    assert "buildkit-cache-red:/var/lib/buildkit" in svc["volumes"] and compose["volumes"] == {
        "buildkit-cache-red": {"name": "buildkit-cache-red"}}
    assert "/run/buildkit-ops/tenants/red:/run/buildkit" in svc["volumes"]
    assert "/opt/buildkit-ops/tenants/red/buildkitd.toml:/etc/buildkit/buildkitd.toml:ro" in svc["volumes"]
    assert "max-parallelism = 2" in out["buildkitd.toml"]
    assert f'bridgeName = "{red.bridge}"' in out["buildkitd.toml"] and red.subnet in out["buildkitd.toml"]
    # its steps reach no other daemon's steps, and nothing but its own bridge reaches its steps
    assert f"rule iptables raw PREROUTING -i {red.bridge} -d 10.10.0.0/15 -j DROP" in out["fence.sh"]
    assert f"rule iptables raw PREROUTING ! -i {red.bridge} -d {red.subnet} -j DROP" in out["fence.sh"]


# ------------------------------------------------------------------ the plans of every instance, through the runner

def host_plays(inv, h, options=None):
    roles = [r for r in role_path.load(None, "host") if r.name in ("emulation", "buildkitd", "prune")]
    return runner.prepare(inv, h, roles, options or Options())


def converged(inv, h, plays, tenant_daemons=()):
    """Facts of a host where every instance runs what the inventory says (the files on the host, each container
    started with its files' hash), and the states of those files."""
    facts, files = {}, []
    for r, c in plays:
        own = r.managed(c)
        files += own
        if r.name == "buildkitd":
            d = c.input.daemon
            facts[play_key(r, c)] = BuildkitdFacts(
                image_id="sha256:abc", container=Container("running", "2026-01-01T00:00:00Z", "sha256:abc",
                                                           config_hash(own, d.buildkit.image)),
                workers="ID PLATFORMS\nw1 linux/amd64", tenant_daemons=list(tenant_daemons) if d.instance is None else [])
        elif r.name == "prune":
            facts[play_key(r, c)] = prune.parse({"prune_units": "\n".join(f.path for f in own),
                                                 "prune_timer": "enabled\nactive" if own else ""})
        else:
            facts[play_key(r, c)] = EmulationFacts(mounted=True)
    return facts, parse_file_states(file_facts(files))


def restarted(plays, facts, states):
    """The instances whose restart handler this plan runs."""
    planned = runner.plan(plays, facts, states, Options())
    return sorted(play_key(r, c) for (r, c), names in zip(plays, runner.notified_handlers(plays, planned), strict=True)
                  if RESTART in names)


def test_converged_instances_plan_nothing(tmp_path):
    inv, h = setup(tmp_path)
    plays = host_plays(inv, h)
    assert [play_key(r, c) for r, c in plays] == ["emulation", "buildkitd", "buildkitd[red]", "prune",
                                                      "prune[red]"]
    facts, states = converged(inv, h, plays)
    assert [s for steps in runner.plan(plays, facts, states, Options()) for s in steps if s.changed] == []


def gc_of(who):
    def edit(d):
        with_tenants(d)
        gc = {"gc": {"policies": [{"all": True, "max_used": "7GB"}]}}
        if who == "red":
            d["all"]["vars"]["tenants"]["red"]["buildkit"].update(gc)
        else:
            d["all"]["children"]["buildhosts"]["hosts"]["build1"]["buildkit"] = gc
    return edit


def emulating(d):
    with_tenants(d)
    d["all"]["children"]["buildhosts"]["hosts"]["build1"]["emulate"] = ["linux/arm64"]


@pytest.mark.parametrize("change, restarts", [
    ("red", ["buildkitd[red]"]),                        # a tenant's GC: that tenant's daemon alone
    ("fleet", ["buildkitd"]),                           # the fleet's GC: the fleet's alone
    ("emulation", ["buildkitd", "buildkitd[red]"]),     # a new emulator: every daemon, each by its own handler
])
def test_a_change_restarts_exactly_the_daemons_it_concerns(tmp_path, change, restarts):
    inv, h = setup(tmp_path)
    before, states = converged(inv, h, host_plays(inv, h))   # the host runs what the inventory said before
    inv, h = setup(tmp_path, emulating if change == "emulation" else gc_of(change))
    plays = host_plays(inv, h)
    assert restarted(plays, before, states) == restarts
    # each handler drains and recreates its own daemon, and no other
    for r, c in plays:
        if r.name == "buildkitd":
            script = r.handlers[RESTART].script(c)
            others = {d.container for d in daemons(inv, h)} - {c.input.daemon.container}
            assert f"docker exec {c.input.daemon.container} buildctl" in script
            assert not any(f"docker exec {o} " in script for o in others)


def test_a_container_started_with_other_files_is_restarted_even_when_the_files_match(tmp_path):
    """The wanted hash covers the instance's own files: a tenant's daemon started before its buildkitd.toml was
    written (a run stopped in between) is restarted."""
    inv, h = setup(tmp_path)
    plays = host_plays(inv, h)
    facts, states = converged(inv, h, plays)
    facts["buildkitd[red]"].container.config_hash = config_hash(render_files(h, None, fleet(h)), "x")
    assert restarted(plays, facts, states) == ["buildkitd[red]"]


def test_a_missing_fence_rule_of_a_tenant_is_put_back_without_a_restart(tmp_path):
    inv, h = setup(tmp_path)
    plays = host_plays(inv, h)
    facts, states = converged(inv, h, plays)
    facts["buildkitd[red]"].fence_missing = ["iptables -t raw PREROUTING -i x -j DROP"]
    steps = [s for each in runner.plan(plays, facts, states, Options()) for s in each if s.changed]
    assert [(s.instance, s.name) for s in steps] == [("red", "build-step fence")] and not steps[0].notify
    assert steps[0].script.strip() == "sh /opt/buildkit-ops/tenants/red/fence.sh apply"


def test_a_daemon_no_longer_placed_here_is_kept_unless_its_removal_was_confirmed(tmp_path):
    inv, h = setup(tmp_path)
    plays = host_plays(inv, h)
    facts, states = converged(inv, h, plays, tenant_daemons=["old", "red"])
    kept = [s for each in runner.plan(plays, facts, states, Options()) for s in each if s.instance == "old"]
    assert [(s.name, s.changed) for s in kept] == [("old: daemon", False)]
    assert "kept with its cache" in kept[0].detail and "remove-tenant old --confirm" in kept[0].detail
    plays = host_plays(inv, h, Options(remove=frozenset({"old"})))
    [gone] = [s for each in runner.plan(plays, facts, states, Options()) for s in each if s.instance == "old"]
    assert gone.changed and gone.role == "buildkitd"
    for removed in ("docker rm -f buildkitd-old", "docker volume rm buildkit-cache-old",
                    "rm -rf /opt/buildkit-ops/tenants/old /run/buildkit-ops/tenants/old"):
        assert removed in gone.script
    assert gone.script.index("debug histories") < gone.script.index("docker rm -f")   # drained first


def test_a_narrow_run_applies_its_roles_and_reports_the_rest_as_pending(tmp_path):
    inv, h = setup(tmp_path)
    before, states = converged(inv, h, host_plays(inv, h))
    inv, h = setup(tmp_path, gc_of("fleet"))
    plays = host_plays(inv, h)
    planned = runner.plan(plays, before, states, Options(roles=frozenset({"prune"})))
    pending = [(s.role, s.name) for each in planned for s in each if s.pending]
    assert pending == [("buildkitd", "buildkitd.toml")]
    assert not any(s.changed for each in planned for s in each)
    assert not any(runner.notified_handlers(plays, planned))


# ------------------------------------------------------------------ files: the gateway's routes, a fixed reference

def test_the_gateway_routes_each_client_to_its_tenants_daemon_and_refuses_a_tenant_not_here(tmp_path):
    inv, h = setup(tmp_path)
    routes = gateway_files.routes(inv, {d.label: d.gateway_socket for d in daemons(inv, h)[1:]})
    out = {f.path.rsplit("/", 1)[1]: f.content.decode()
           for f in gateway_files.render(h, TLS, b"crl\n", {}, {}, "/run/buildkit-ops", tenants=routes)}
    assert out["tenants.map"] == "laptop red\nlaptop2 blue\n"
    cfg = out["haproxy.cfg"]
    assert "use_backend tenant_red if { var(txn.tenant) -m str red }" in cfg
    assert "server buildkitd /run/buildkit/tenants/red/buildkitd.sock proto h2" in cfg
    assert "errorfile /usr/local/etc/haproxy/absent-blue.http if { var(txn.tenant) -m str blue }" in cfg
    assert "grpc-status: 14\r\n" in out["absent-blue.http"] and "tenant blue has no buildkitd" in out["absent-blue.http"]
    assert "tenant=%[var(txn.tenant)]" in cfg


@pytest.mark.parametrize("edit", [lambda d: None, with_tenants], ids=["without tenants", "with tenants"])
def test_the_fleets_daemon_files_are_the_reference_with_or_without_tenants(tmp_path, edit):
    """reference/ holds the fleet's files as rendered before this code (update them on purpose, with the
    template change that changes them)."""
    inv, h = setup(tmp_path, edit)
    for f in render_files(h, None, daemons(inv, h)[0]):
        assert f.content == (REFERENCE / f"buildkitd-{f.path.rsplit('/', 1)[1]}").read_bytes(), f.path


def test_without_tenants_the_gateways_files_are_the_reference(tmp_path):
    inv, h = setup(tmp_path, lambda d: None)
    out = {f.path.rsplit("/", 1)[1]: f.content for f in gateway_files.render(
        h, TLS, b"crl\n", {}, {}, "/run/buildkit-ops", tenants=gateway_files.routes(inv, {}))}
    for name in ("haproxy.cfg", "docker-compose.yml"):
        assert out[name] == (REFERENCE / f"gateway-{name}").read_bytes(), name
    assert daemons(inv, h) == [fleet(h)]


def test_a_tenants_prune_timer_is_its_own_and_one_of_no_tenant_here_is_removed(tmp_path):
    inv, h = setup(tmp_path)
    red = daemons(inv, h)[1]
    units = prune.render(h, None, red)
    assert [f.path for f in units] == ["/etc/systemd/system/buildkit-ops-prune-red.service",
                                       "/etc/systemd/system/buildkit-ops-prune-red.timer"]
    assert "/usr/bin/docker exec buildkitd-red buildctl" in units[0].content.decode()
    plays = host_plays(inv, h)
    facts, states = converged(inv, h, plays)
    facts["prune"].tenant_timers = ["buildkit-ops-prune-gone.timer", "buildkit-ops-prune-red.timer"]
    steps = [s for each in runner.plan(plays, facts, states, Options()) for s in each if s.changed]
    assert [(s.instance, s.name) for s in steps] == [("gone", "buildkit-ops-prune-gone.timer")]
    assert "rm -f /etc/systemd/system/buildkit-ops-prune-gone.service /etc/systemd/system/buildkit-ops-prune-gone" \
           ".timer" in steps[0].script


def test_a_run_limited_to_one_instance_applies_what_is_planned_for_it_and_only_that(tmp_path):
    """remove-tenant's run: `buildkitd[old]` applies the removal the default instance plans for old; the fleet's
    own drift stays pending."""
    inv, h = setup(tmp_path)
    before, states = converged(inv, h, host_plays(inv, h), tenant_daemons=["old"])
    inv, h = setup(tmp_path, gc_of("fleet"))
    plays = host_plays(inv, h, Options(remove=frozenset({"old"})))
    planned = runner.plan(plays, before, states, Options(roles=frozenset({"buildkitd[old]"})))
    steps = [s for each in planned for s in each]
    assert [(s.instance, s.name) for s in steps if s.changed] == [("old", "old: daemon")]
    assert [(s.instance, s.name) for s in steps if s.pending] == [(None, "buildkitd.toml")]
