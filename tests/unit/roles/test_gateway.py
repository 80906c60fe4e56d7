"""The gateway role: its files (haproxy.cfg: mutual TLS with the CRL and the roles' methods; the client map;
the compose file), its plan (converged, a key's mode, the port held by another program, a new image), the
handler's script, and the audit trail read back."""
from __future__ import annotations

import dataclasses

import pytest
import yaml
from unit_helpers import HOST, changed, file_facts

from buildkit_ops.engine.render import RenderError, parse_file_states
from buildkit_ops.inventory.model import Limits
from buildkit_ops.roles import gateway
from buildkit_ops.roles.gateway import files
from buildkit_ops.roles.gateway import handlers as gateway_handlers
from buildkit_ops.roles.gateway.exports import parse_audit

TLS = {"ca.crt": b"ca\n", "server.crt": b"crt\n", "server.key": b"key\n"}
ROLES = {"laptop": "developer", "alice": "admin", "buildkit-ops-operator": "operator"}
FILES = files.render(HOST, TLS, b"crl\n", ROLES, {"laptop": Limits(2, queue=5)}, "/run/buildkit-ops")


def text(name: str) -> str:
    return next(f for f in FILES if f.path.endswith(name)).content.decode()


def converged():
    return {"files": file_facts(FILES), "gw_image": "sha256:abc",
            "gw_container": f"running 2026-01-01T00:00:00Z {files.compose_hash(FILES, 'sha256:abc')}",
            "gw_port": 'LISTEN 0 4096 0.0.0.0:1234 0.0.0.0:* users:(("haproxy",pid=9,fd=7))',
            "gw_admin": "present", "gw_socat": "present"}


def plan(facts):
    return gateway.plan(HOST, FILES, gateway.parse(facts), parse_file_states(facts["files"]), "sha256:abc")


def test_converged_plans_nothing():
    assert changed(plan(converged())) == []


def test_a_changed_certificate_reloads_the_gateway_and_never_buildkitd():
    facts = converged()
    facts["files"] = file_facts(FILES, ("tls/server.crt", "0" * 64, "644"))
    steps = [s for s in plan(facts) if s.changed]
    assert [(s.name, s.notify) for s in steps] == [("tls/server.crt", ["reload gateway"])]


@pytest.mark.parametrize("name", ["gateway/clients.map", "gateway/limits.map", "gateway/crl.pem"])
def test_a_changed_map_or_crl_alone_is_put_in_force_in_place_without_a_reload(name):
    facts = converged()
    facts["files"] = file_facts(FILES, (name, "0" * 64, "644"))
    steps = [s for s in plan(facts) if s.changed]
    cut = ["end revoked connections"] if name.endswith("crl.pem") else []
    assert [(s.name, s.notify) for s in steps] == [(name, ["update gateway in place", *cut])]


@pytest.mark.parametrize("why,facts_change", [
    ("haproxy.cfg changed too", {"files": ("gateway/haproxy.cfg", "0" * 64, "644")}),
    ("the gateway has no runtime API yet (an earlier version)", {"gw_admin": ""}),
    ("the gateway is not running", {"gw_container": "exited 2026-01-01T00:00:00Z x"}),
    ("it runs another image", {"gw_image": "sha256:other"})])
def test_maps_and_crl_go_with_a_reload_when_anything_else_reloads_or_no_runtime_api_runs(why, facts_change):
    facts, facts_change = converged(), dict(facts_change)   # (the parameter is shared by every run of the test)
    changed_files = [("gateway/crl.pem", "0" * 64, "644")]
    if "files" in facts_change:
        changed_files.append(facts_change.pop("files"))
    facts["files"] = file_facts(FILES, *changed_files)
    facts.update(facts_change)
    crl = next(s for s in plan(facts) if s.name == "gateway/crl.pem")
    assert crl.notify == ["reload gateway", "end revoked connections"], why


def test_the_in_place_handler_is_given_the_maps_the_gateway_reads_and_the_crl():
    env = gateway_handlers.update_env(HOST, FILES)
    assert env["BKOPS_MAPS"] == "clients.map ci-roles.map limits.map queues.map room.map" and env["BKOPS_CRL"] == "1"   # no tenants: no tenants.map
    assert env["BKOPS_SOCK"] == "/run/buildkit-ops/gateway-admin.sock" and env["BKOPS_CONF"] == "/usr/local/etc/haproxy"
    assert "stats socket /run/buildkit/gateway-admin.sock mode 600 level admin" in text("haproxy.cfg")


def test_replies_no_longer_rendered_are_removed_and_socat_is_installed_where_missing():
    facts = converged()
    facts["gw_replies"] = "denied-laptop.http\ndenied-any.http\n"
    facts["gw_socat"] = ""
    steps = [s for s in plan(facts) if s.changed]
    assert [(s.name, s.notify) for s in steps] == [("replies no longer used", []),
                                                     ("socat (the runtime API's client)", [])]
    assert steps[0].script == ("rm -f /opt/buildkit-ops/gateway/denied-any.http "
                               "/opt/buildkit-ops/gateway/denied-laptop.http\n")
    assert steps[1].packages == ["socat"]


def test_the_key_with_a_wrong_mode_is_fixed_and_never_travels():
    facts = converged()
    facts["files"] = file_facts(FILES, ("gateway/server.pem", next(f.sha256 for f in FILES if f.secret), "644"))
    step = next(s for s in plan(facts) if s.changed)
    assert (step.name, step.detail, step.diff) == ("gateway/server.pem", "mode 644 root:root", None)
    assert step.script.startswith("chmod 600 /opt/buildkit-ops/gateway/server.pem")


@pytest.mark.parametrize("holder,refused", [('users:(("nc",pid=77,fd=3))', True),
                                            ('users:(("buildkitd",pid=1,fd=3))', False)])   # (before the gateway)
def test_the_port_held_by_another_program_is_an_error(holder, refused):
    facts = converged()
    facts["gw_port"] = f"LISTEN 0 5 0.0.0.0:1234 0.0.0.0:* {holder}"
    if refused:
        with pytest.raises(gateway.PortTaken, match="port 1234 is already taken on build1"):
            plan(facts)
    else:
        plan(facts)


def test_an_absent_gateway_is_started():
    facts = converged()
    facts["gw_container"] = ""
    assert changed(plan(facts)) == [("service", "absent: start")]


def test_the_config_terminates_mutual_tls_with_the_crl_and_forwards_to_the_socket_only():
    cfg = text("haproxy.cfg")
    bind = next(line.split() for line in cfg.splitlines() if line.strip().startswith("bind "))
    assert bind[1] == "0.0.0.0:1234" and "verify" in bind and bind[bind.index("verify") + 1] == "required"
    assert bind[bind.index("crl-file") + 1] == "/usr/local/etc/haproxy/crl.pem" and "alpn" in bind
    servers = [line.split() for line in cfg.splitlines() if line.strip().startswith("server ")]
    assert {s[2] for s in servers} == {"/run/buildkit/buildkitd.sock"} and all("h2" in s for s in servers)
    assert "timeout server 7200s" in cfg      # (gateway_idle_timeout: the longest silent step)
    compose = yaml.safe_load(text("gateway/docker-compose.yml"))["services"]["gateway"]
    assert compose["network_mode"] == "host" and "/run/buildkit-ops:/run/buildkit" in compose["volumes"]
    assert compose["logging"]["options"] == {"max-size": "20m", "max-file": "5"}


def test_a_refusal_names_the_client_its_role_and_the_method_whoever_the_client_is():
    cfg = text("haproxy.cfg")
    replies = [line.strip() for line in cfg.splitlines() if "grpc-status 7" in line]
    assert replies == [
        # a CI job's certificate of a rule this gateway does not know (docs/ci.md)
        'http-request return status 200 hdr grpc-status 7 hdr grpc-message "%[var(txn.client)]: no CI rule of this '
        'server gives it a role" if ci_job !{ var(txn.role) -m found }',
        'http-request return status 200 hdr grpc-status 7 hdr grpc-message "%[var(txn.client)] (role '
        '%[var(txn.role)]) may not call %[var(txn.method)]: it needs role admin" if admin_call !admin',
        # a method on no list: never echoed (the client made up the path)
        'http-request return status 200 hdr grpc-status 7 hdr grpc-message "%[var(txn.client)] (role '
        '%[var(txn.role)]) may not call this method: no role may call it" if { var(txn.why) -m found }',
        # another client's build or session (ownership.lua writes it from plain words only)
        'http-request return status 200 hdr grpc-status 7 hdr grpc-message "%[var(txn.denied)]" if '
        '{ var(txn.denied) -m found }']
    assert ("http-after-response set-header content-type application/grpc if { var(txn.result) -m str denied full }"
            in cfg)
    # no client's name in the configuration: a client added, removed or given a role changes maps only
    assert not any(name in cfg for name in ("laptop", "alice"))
    assert not [f for f in FILES if f.path.endswith(".http")]


def test_the_client_map_holds_one_word_each_and_refuses_anything_else():
    assert text("clients.map") == "alice admin\nbuildkit-ops-operator operator\n"   # (developer: the default)
    for name, role in (("evil admin\nlaptop", "developer"), ("x y", "developer"), ("laptop", "root")):
        with pytest.raises(RenderError):
            files.clients_map({name: role})


def test_build_limits_are_one_word_and_number_each_and_wait_in_lua_before_the_solve_is_counted():
    assert text("limits.map") == "laptop 2\n"
    with pytest.raises(RenderError):
        files.limits_map({"evil 1\nlaptop": Limits(1)})
    assert text("queues.map") == "laptop 5\n"
    cfg = text("haproxy.cfg")
    assert "lua-load /usr/local/etc/haproxy/build_turns.lua" in cfg
    wait, full, track = (
        cfg.index("http-request lua.build_turn if limited m_Solve or limited m_Status or limited m_BridgeSolve"),
        cfg.index('hdr grpc-status 8 hdr grpc-message "%[var(txn.full)]" if { var(txn.full) -m found }'),
        cfg.index("http-request track-sc2 var(txn.ref) table build_turns if limited m_Solve"))
    assert max(cfg.index(line) for line in cfg.splitlines() if "grpc-status 7" in line) < wait < full < track
    assert text("build_turns.lua").startswith("-- build_turns.lua")
    assert text("turn_lines.lua").startswith("-- turn_lines.lua")


def test_ownership_is_checked_on_whole_bodies_after_the_roles_and_before_a_build_waits_its_turn():
    cfg = text("haproxy.cfg")
    body, check = (cfg.index("http-request wait-for-body time 10s if names_in_body"),
                   cfg.index("http-request lua.check_owner\n"))
    assert cfg.index("if admin_call !admin") < body < check < cfg.index("http-request lua.build_turn")
    assert "lua-load /usr/local/etc/haproxy/ownership.lua" in cfg and "lua-prepend-path" in cfg
    for name in ("ownership.lua", "grpc_names.lua", "owners.lua"):
        assert text(name).startswith(f"-- {name}")
    assert " ref=%[var(txn.ref)] session=%[var(txn.session)]" in cfg


def test_the_audit_trail_is_read_back_typed():
    lines = parse_audit(
        '2026-12-01T18:08:29.839776745Z 01/Dec/2026:18:08:29.707 client=laptop role=developer '
        'method="/moby.buildkit.v1.Control/Solve" result=ok status=200 ms=131 in=378 out=90 term=--\n'
        "[NOTICE]   (1) : Loading success.\n"
        '2026-12-01T18:08:30.000000000Z 01/Dec/2026:18:08:30.000 client=- role=- method="-" result=- status=0 '
        'ms=-1 in=0 out=0 term=CH\n'   # (a handshake refused, a health check: no call)
        '2026-12-01T18:09:00.000000000Z 01/Dec/2026:18:09:00.000 client=laptop2 role=developer '
        'method="/moby.buildkit.v1.Control/Prune" result=denied status=200 ms=1 in=10 out=20 term=--\n'
        '2026-12-01T18:09:09.000000000Z 01/Dec/2026:18:09:00.000 client=laptop role=developer '
        'method="/moby.buildkit.v1.Control/Solve" result=ok status=200 ms=9000 in=10 out=20 term=-- waited=4012\n')
    assert [(a.client, a.method.rsplit("/", 1)[1], a.result) for a in lines] == [
        ("laptop", "Solve", "ok"), ("laptop2", "Prune", "denied"), ("laptop", "Solve", "ok")]
    assert [a.waited_ms for a in lines] == [0, 0, 4012]
    assert lines[0].started == "2026-12-01T18:08:29.707+00:00" and lines[0].ended.startswith("2026-12-01T18:08:29.839")
    assert lines[0].ms == 131 and lines[0].bytes_in == 378


def test_the_audit_line_carries_the_address_and_survives_any_byte_in_a_path():
    """HAProxy's +E escapes `"`, `\\` and `]` in the method; the reader takes them back whole. A line of an older
    gateway (no addr=) still reads."""
    [new, old, conn] = parse_audit(
        '2026-12-06T18:00:00.000000000Z 06/Dec/2026:18:00:00.000 client=laptop addr=10.77.0.21 role=developer '
        'method="/x\\"y\\\\z\\]" result=denied status=200 ms=1 in=1 out=1 term=--\n'
        '2026-12-06T18:00:01.000000000Z 06/Dec/2026:18:00:01.000 client=laptop role=developer '
        'method="/moby.buildkit.v1.Control/Solve" result=ok status=200 ms=1 in=1 out=1 term=--\n'
        '2026-12-06T18:00:02.000000000Z connection client=laptop serial=0A1B addr=10.77.0.21:5000\n'
        '2026-12-06T18:00:03.000000000Z 06/Dec/2026:18:00:03.000 client=laptop addr=10.77.0.21 role=developer '
        'method="/moby.buildkit.v1.Control/Status" result=ok status=200 ms=1 in=1 out=1 term=--\n')
    assert (new.method, new.address) == ('/x"y\\z]', "10.77.0.21")
    assert (old.method, old.address) == ("/moby.buildkit.v1.Control/Solve", "")
    assert conn.method.endswith("/Status")          # (the connection line is no call)


def test_connections_are_bounded_and_a_handshake_gets_seconds():
    cfg = text("haproxy.cfg")
    assert f"maxconn {files.MAX_CONNECTIONS}" in cfg and "timeout client-hs 10s" in cfg
    track = cfg.index("tcp-request connection track-sc0 src table per_address")
    assert cfg.index(f"tcp-request connection reject if {{ sc0_conn_cur(per_address) gt "
                     f"{files.MAX_CONNECTIONS_PER_ADDRESS} }}") > track
    assert "%{+Q,+E}[var(txn.method)]" in cfg and " addr=%ci " in cfg
    assert "http-request lua.note_connection if !{ var(sess.noted) -m found }" in cfg
    assert "lua-load /usr/local/etc/haproxy/connections.lua" in cfg and text("connections.lua").startswith("--")


def test_a_host_whose_crl_is_newer_stops_the_run_only_when_this_pki_signed_it(tmp_path):
    """The stale-PKI refusal (before any change of any role) is for this deployment's own CRLs; a host that
    another deployment provisioned is taken over as before."""
    from buildkit_ops.pki import certs, crl
    ca, _ = certs.ensure_ca(tmp_path, 3650)
    for _ in range(3):   # CRL number 3, signed by this PKI's CA
        made = crl.current(tmp_path, [{"name": "x", "serial": format(_ + 1, "x"), "issuer":
                                       ca.cert.subject.rfc4514_string(), "revoked_at": "2026-12-01T10:00:00+00:00"}])
    facts = converged() | {"gw_crl": made.pem.decode()}
    own = crl.own_key_ids(tmp_path)
    with pytest.raises(gateway.StalePki, match=r"build1 enforces CRL 3 of \d{4}-\d\d-\d\d, this PKI has 2: "):
        gateway.plan(HOST, FILES, gateway.parse(facts), parse_file_states(facts["files"]), "sha256:abc", 2,
                     own_cas=own)
    gateway.plan(HOST, FILES, gateway.parse(facts), parse_file_states(facts["files"]), "sha256:abc", 3, own_cas=own)
    gateway.plan(HOST, FILES, gateway.parse(facts), parse_file_states(facts["files"]), "sha256:abc", None,
                 own_cas=frozenset({"another deployment's"}))


def test_private_mode_listens_on_the_private_address_only_which_must_be_the_hosts():
    host = dataclasses.replace(HOST, private_address="10.0.0.11")
    rendered = files.render(host, TLS, b"crl\n", ROLES, {}, "/run/buildkit-ops")
    cfg = next(f for f in rendered if f.path.endswith("haproxy.cfg")).content.decode()
    assert [line.split()[1] for line in cfg.splitlines() if line.strip().startswith("bind ")] == ["10.0.0.11:1234"]
    assert "    bind 0.0.0.0:1234 " in text("haproxy.cfg")                         # (without it: every address)
    facts = converged()
    facts["gw_addresses"] = "127.0.0.1\n10.0.0.11\n"
    gateway.plan(host, rendered, gateway.parse(facts), parse_file_states(file_facts(rendered)), "sha256:abc")
    facts["gw_addresses"] = "127.0.0.1\n10.0.0.12\n"
    with pytest.raises(gateway.NotHostAddress, match=r"build1: private_address 10.0.0.11 is not an address of build1 "
                                                     r"\(it has 127.0.0.1, 10.0.0.12\)"):
        gateway.plan(host, rendered, gateway.parse(facts), parse_file_states(file_facts(rendered)), "sha256:abc")


def test_the_start_script_makes_the_root_only_folders_of_the_shared_claims_and_turns():
    script = gateway_handlers.reload_script(HOST, FILES, None)
    assert script.startswith("mkdir -p -m 0700 /run/buildkit-ops /run/buildkit-ops/owners /run/buildkit-ops/turns\n")
    # (and sweeps the claims that workers gone since left behind, a day old: longer than any build)
    assert "find /run/buildkit-ops/owners -type f -mmin +1440 -delete\n" in script
    # (the same folders as the gateway sees them)
    assert 'OWNERS = "/run/buildkit/owners"' in text("ownership.lua")
    assert 'TURNS = "/run/buildkit/turns"' in text("build_turns.lua")
