"""Tenants on a host: each tenant's daemon with names, files, socket, bridge and subnet of its own (the fleet's
keeps the names it always had), its plan (start, converged, restart alone, fence put back, a daemon no longer
placed here kept), the gateway's routes to it, and its prune timer. Without tenants, every file is as before."""
from __future__ import annotations

import yaml
from unit_helpers import changed, file_facts, load_text, mutate

from buildkit_ops.engine.render import parse_file_states
from buildkit_ops.roles import prune, tenants
from buildkit_ops.roles.buildkitd.exports import daemons, fleet, render_files
from buildkit_ops.roles.gateway import files as gateway_files

TLS = {"ca.crt": b"ca\n", "server.crt": b"crt\n", "server.key": b"key\n"}


def with_tenants(d):
    d["all"]["vars"]["tenants"] = {"red": {"buildkit": {"max_parallelism": 2,
                                                        "prune_schedule": {"calendar": "daily", "all": True}}},
                                   "blue": {"hosts": ["build2"]}}
    d["all"]["children"]["buildhosts"]["hosts"]["build2"] = {"address": "10.0.0.12"}
    d["all"]["children"]["clients"]["hosts"]["laptop"]["tenant"] = "red"
    d["all"]["children"]["clients"]["hosts"]["laptop2"] = {"address": "10.0.0.22", "tenant": "blue"}


def setup(tmp_path):
    inv = load_text(tmp_path, mutate(with_tenants))
    return inv, inv.hosts["build1"]


def test_the_fleets_daemon_keeps_its_names_and_a_tenants_are_its_own(tmp_path):
    inv, h = setup(tmp_path)
    f, red = daemons(inv, h)
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


def tenant_facts(inv, h, state="running", hash_=None, extra=""):
    ds = tuple(daemons(inv, h)[1:])
    files = [f for d in ds for f in render_files(h, None, d)]
    lines = [f"buildkitd-{d.tenant} {state} 2026-01-01T00:00:00Z {hash_ or tenants.wanted_hash(d, files, None)}"
             for d in ds]
    return ds, files, {"files": file_facts(files), "tenant_daemons": "\n".join(lines + ([extra] if extra else []))}


def plan(h, ds, files, facts):
    return tenants.plan(h, ds, files, tenants.parse(facts), parse_file_states(facts["files"]), None)


def test_converged_tenants_plan_nothing_and_a_daemon_no_longer_placed_here_is_kept(tmp_path):
    inv, h = setup(tmp_path)
    ds, files, facts = tenant_facts(inv, h, extra="buildkitd-old running 2026-01-01T00:00:00Z abc")
    steps = plan(h, ds, files, facts)
    assert changed(steps) == []
    kept = next(s for s in steps if s.name == "old: buildkitd")
    assert "kept with its cache" in kept.detail and "remove-tenant old --confirm" in kept.detail


def test_an_absent_or_changed_tenant_is_restarted_alone(tmp_path):
    inv, h = setup(tmp_path)
    ds, files, facts = tenant_facts(inv, h, hash_="other")
    assert changed(plan(h, ds, files, facts)) == [("red: buildkitd", "runs another config or image: restart after "
                                                                     "its builds")]
    facts["tenant_daemons"] = ""
    assert [s.notify for s in plan(h, ds, files, facts) if s.changed] == [[tenants.RESTART]]
    script = tenants.restart_script(ds, files, None, 300, False)
    assert "docker exec buildkitd-red buildctl" in script and "/opt/buildkit-ops/tenants/red/docker-compose.yml" in script
    assert "buildkitd " not in script.replace("buildkitd-red", "")   # the fleet's daemon is never touched


def test_a_missing_fence_rule_of_a_tenant_is_put_back_without_a_restart(tmp_path):
    inv, h = setup(tmp_path)
    ds, files, facts = tenant_facts(inv, h)
    facts["tenant_fences"] = "red missing: iptables -t raw PREROUTING -i x -j DROP"
    steps = [s for s in plan(h, ds, files, facts) if s.changed]
    assert [s.name for s in steps] == ["red: build-step fence"] and not steps[0].notify
    assert steps[0].script.strip() == "sh /opt/buildkit-ops/tenants/red/fence.sh apply"


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


def test_without_tenants_the_gateways_and_buildkitds_files_are_as_before(tmp_path):
    inv = load_text(tmp_path, mutate(lambda d: None))
    h = inv.hosts["build1"]
    plain = gateway_files.render(h, TLS, b"crl\n", {}, {}, "/run/buildkit-ops")
    routed = gateway_files.render(h, TLS, b"crl\n", {}, {}, "/run/buildkit-ops",
                                  tenants=gateway_files.routes(inv, {}))
    assert [(f.path, f.content) for f in plain] == [(f.path, f.content) for f in routed]
    assert not any("tenant" in f.content.decode(errors="replace") for f in plain if f.path.endswith(".cfg"))
    assert render_files(h) == render_files(h, None, fleet(h)) and daemons(inv, h) == [fleet(h)]


def test_a_tenants_prune_timer_is_its_own_and_one_of_no_tenant_here_is_removed(tmp_path):
    inv, h = setup(tmp_path)
    red = daemons(inv, h)[1]
    units = prune.render(h, None, red)
    assert [f.path for f in units] == ["/etc/systemd/system/buildkit-ops-prune-red.service",
                                       "/etc/systemd/system/buildkit-ops-prune-red.timer"]
    assert "/usr/bin/docker exec buildkitd-red buildctl" in units[0].content.decode()
    facts = prune.parse({"prune_tenant_units": "buildkit-ops-prune-gone.timer enabled active\n"
                                               "buildkit-ops-prune-gone.service disabled inactive"})
    steps = prune.tenant_plan([red], units, facts, {})
    assert [s.name for s in steps if s.changed] == ["buildkit-ops-prune-red.service", "buildkit-ops-prune-red.timer",
                                                    "red: timer enabled", "buildkit-ops-prune-gone.timer"]
    assert "rm -f /etc/systemd/system/buildkit-ops-prune-gone.timer" in steps[-1].script


def test_a_new_emulated_platform_restarts_the_tenants_too(tmp_path):
    """buildkitd finds the kernel's emulators as it starts: the fleet's is restarted for a new one, so are the
    tenants' (each after its own builds)."""
    inv, h = setup(tmp_path)
    ds, files, facts = tenant_facts(inv, h)
    assert changed(tenants.plan(h, ds, files, tenants.parse(facts), parse_file_states(facts["files"]), None)) == []
    steps = tenants.plan(h, ds, files, tenants.parse(facts), parse_file_states(facts["files"]), None,
                         ("linux/arm64",))
    assert [s.notify for s in steps if s.changed] == [[tenants.RESTART]]
