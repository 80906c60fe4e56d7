"""The gateway and the firewall with CI trusts (docs/ci.md): the CI exchange's frontend only where there are
trusts, a CI certificate's role, tenant and limits by its rule's key (never a client's map entry), the maps'
keys checked, and the firewall's rule for the BuildKit and CI ports."""
from __future__ import annotations

import pytest
from unit_helpers import HOST

from buildkit_ops.ci_trust.rules import Rule, Trust
from buildkit_ops.engine.render import RenderError
from buildkit_ops.roles.firewall import client_set
from buildkit_ops.roles.gateway import files

TLS = {"ca.crt": b"ca\n", "server.crt": b"crt\n", "server.key": b"key\n"}
TRUSTS = {"github": Trust("github", "https://token.actions.githubusercontent.com", "buildkit-ops", (
    Rule({"repository": "org/app", "ref": "refs/heads/main"}, tenant="red", builds=2, queue=3),
    Rule({"repository": "org/tools"}, role="admin")))}


def rendered(trusts=None):
    out = files.render(HOST, TLS, b"crl\n", {}, {}, "/run/buildkit-ops", ci_trusts=trusts)
    return {f.path.rsplit("/", 1)[1]: f.content.decode() for f in out}


def test_the_exchange_port_is_served_only_with_trusts_and_only_its_one_path():
    without, with_ = rendered()["haproxy.cfg"], rendered(TRUSTS)["haproxy.cfg"]
    assert "frontend ci_exchange" not in without and "ci-issuer.sock" not in without
    front = with_.split("frontend ci_exchange", 1)[1].split("backend ci_rate", 1)[0]
    assert f"bind 0.0.0.0:{HOST.buildkit.ci_port} ssl crt /usr/local/etc/haproxy/server.pem alpn http/1.1" in front
    assert "ca-file" not in front and "verify" not in front           # server-only TLS: a job has no certificate
    assert "http-request deny deny_status 404 unless { path /v1/certificate }" in front
    assert "server issuer /run/buildkit/ci-issuer.sock" in with_


def test_a_ci_certificate_takes_its_rules_role_tenant_and_limits_and_an_unknown_rule_nothing():
    out = rendered(TRUSTS)
    assert out["ci-roles.map"] == "ci:github:0 developer\nci:github:1 admin\n"
    cfg = out["haproxy.cfg"]
    assert 'acl ci_job ssl_c_i_dn(O) -m str "buildkit-ops CI"' in cfg
    assert "http-request set-var(txn.who) ssl_c_s_dn(OU) if ci_job" in cfg
    assert "var(txn.client),map(/usr/local/etc/haproxy/clients.map,developer) unless ci_job" in cfg
    # a rule's limits count all its jobs: their build turns under the rule's key (its digest: a plain word)
    assert "http-request set-var(txn.turn_key) ssl_c_s_dn(OU),digest(sha256),hex if ci_job" in cfg
    assert ('grpc-message "%[var(txn.client)]: no CI rule of this server gives it a role" if ci_job '
            '!{ var(txn.role) -m found }') in cfg
    # (no tenants on this host: no tenants.map line)
    for map_name in ("limits.map", "queues.map"):
        assert f"var(txn.who),map_str_int(/usr/local/etc/haproxy/{map_name},0)" in cfg, map_name


def test_routes_and_limits_carry_the_rules_keys():
    class Inv:
        clients = {}
        tenants = {"red": None}
        ci_trust = TRUSTS
    assert files.routes(Inv, {}).clients == {"ci:github:0": "red"}
    limits = files.client_limits(Inv)
    assert files.limits_map(limits) == b"ci:github:0 2\n" and files.queues_map(limits) == b"ci:github:0 3\n"


@pytest.mark.parametrize("key", ["ci:github:0\nlaptop admin", "ci:Git hub:0", "ci:github:x", "laptop admin"])
def test_a_key_that_is_neither_a_clients_name_nor_a_rules_cannot_be_written(key):
    with pytest.raises(RenderError):
        files.tenants_map({key: "red"})


def test_the_firewalls_rule_lets_the_set_in_to_both_ports_with_trusts_and_one_without():
    one = client_set.rule(4, 1234, client_set.ANY)
    both = client_set.rule(4, 1234, client_set.ANY, 1235)
    assert one[:4] == ["-p", "tcp", "--dport", "1234"]
    assert both[:6] == ["-p", "tcp", "-m", "multiport", "--dports", "1234,1235"]
    assert client_set.rule_comment(1234, client_set.ANY, 1235) == "buildkit-ops-clients:1234,1235:any"
    assert "WANT=buildkit-ops-clients:1234,1235:any" in client_set.hook_script(1234, client_set.ANY, 1235)
