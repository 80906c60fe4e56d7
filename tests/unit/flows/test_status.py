"""status' judgement of what a host's facts say: each warning and failure, with the command that fixes it, from
facts written here as the roles' facts.sh print them."""
from __future__ import annotations

import datetime as dt

from buildkit_ops import inventory as I
from buildkit_ops.flows import status, status_tenants
from buildkit_ops.flows.status_tree import Status
from buildkit_ops.roles.buildkitd.facts import parse as parse_buildkitd
from buildkit_ops.roles.engine import parse as parse_engine
from buildkit_ops.roles.firewall import parse as parse_firewall
from buildkit_ops.roles.gateway.exports import GatewayFacts

LAPTOP_RULE = "ufw allow from 10.77.0.21 to any port 1234 proto tcp comment 'buildkit-ops client laptop'"
ACTIVE = "Status: active\nDefault: deny (incoming), allow (outgoing), deny (routed)"


def judged(inv_path, fw=None, bk=None, disk="100000000000 50000000000") -> tuple[Status, object]:
    inv = I.load(inv_path)
    h = inv.hosts["build1"]
    facts = {"engine": parse_engine({"os": "debian 12", "docker": "20.10.24", "compose": "2.26.1"}),
             "firewall": parse_firewall(fw or {"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_rules": LAPTOP_RULE,
                                               "ufw_ipv6": "yes"}),
             "buildkitd": parse_buildkitd(bk or {"container": "running 2026-12-01T00:00:00Z sha256:a x",
                                                 "version": "buildkitd github.com/moby/buildkit v0.35.1 x",
                                                 "workers": "ID PLATFORMS\nw1 linux/amd64", "step_network": "cni"})}
    hs = status.host_status(inv, h, facts["engine"], facts["firewall"], facts["buildkitd"], GatewayFacts(),
                            {"disk": disk}, dt.datetime.now(dt.timezone.utc), [])
    st = Status()
    status.judge(h, hs, st)
    return st, hs


def test_a_healthy_host_has_nothing_to_say(inv_path):
    st, hs = judged(inv_path)
    assert st.warnings == [] and st.failures == []
    assert hs.firewall.allowed == ["10.77.0.21"] and hs.buildkitd.version == "v0.35.1"


def test_drift_a_stopped_buildkitd_and_host_networking_are_warnings(inv_path):
    st, _ = judged(inv_path, fw={"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_ipv6": "yes",
                                 "ufw_rules": LAPTOP_RULE.replace("10.77.0.21", "10.77.0.99")},
                   bk={"container": "exited 2026-12-01T00:00:00Z sha256:a x", "step_network": "host",
                       "version": "buildkitd github.com/moby/buildkit v0.35.1 x"})
    assert st.failures == []
    assert st.warnings == [
        "build1: buildkitd is exited: run `invoke provision --host build1`",
        "build1: build steps share the host's network (step_network: host): every build can reach the host's own "
        "services",
        "build1: the firewall allowlist differs from the inventory's clients (missing ['10.77.0.21'], extra "
        "['10.77.0.99']): run `invoke provision --host build1`"]


def test_ipv6_unfiltered_and_a_rule_of_others_opening_the_port_fail(inv_path):
    st, _ = judged(inv_path, fw={"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_ipv6": "no",
                                 "ufw_rules": LAPTOP_RULE + "\nufw allow 1234/tcp"})
    assert len(st.failures) == 2
    assert st.failures[0].startswith("build1: rules not made by buildkit-ops open port 1234/tcp to more than the "
                                     "clients: ufw allow 1234/tcp")
    assert "ufw does not filter IPv6" in st.failures[1]


def test_a_disk_smaller_than_the_gc_limit_is_a_warning(inv_path):
    st, hs = judged(inv_path, disk="100000000000 1000000000")    # 1 GB free, GC limit 10 GB
    assert hs.cache.disk_free == 10**9
    assert [w for w in st.warnings if "before the GC frees any" in w]


def test_a_ca_and_a_client_certificate_about_to_expire_are_warnings(inv_path, tmp_path):
    import dataclasses

    from buildkit_ops.pki import certs as pki
    inv = dataclasses.replace(I.load(inv_path), pki_dir=tmp_path / "short-lived")
    ca, _ = pki.ensure_ca(inv.pki_dir, 20)          # a CA with 20 days left
    pki.ensure_leaf(pki.client_paths(inv.pki_dir, "laptop"), ca, "laptop", 10, 1)
    st = status.status(inv, [])                     # (no host asked: the operator-side checks alone)
    assert st.ca is not None and st.ca.days_left in (19, 20)
    assert [w for w in st.warnings if w.startswith("the CA expires in ") and "rotate-certs --ca" in w]
    assert [w for w in st.warnings if w.startswith("client laptop: certificate expires in ")]
    assert st.clients["laptop"].certificate is not None and st.ok


def test_a_buildkit_below_the_security_floor_is_a_warning_naming_the_fixes_it_lacks(inv_path):
    st, _ = judged(inv_path, bk={"container": "running 2026-12-01T00:00:00Z sha256:a x", "step_network": "cni",
                                 "version": "buildkitd github.com/moby/buildkit v0.31.2 x",
                                 "workers": "ID PLATFORMS\nw1 linux/amd64"})
    assert st.warnings == ["build1: BuildKit v0.31.2 lacks security fixes a shared server needs (v0.33.1: blob "
                           "digests are verified, to protect shared caches; v0.34.2: GHSA-w26x-xg27-7qjc: a client "
                           "of the control API could set xattrs outside the state directory (a path to root on the "
                           "host); GHSA-2fqp-xg6f-v7gj: git resolver cache poisoning crashed the daemon): run "
                           "v0.34.2 or newer"]


def test_each_tenants_daemon_is_judged_and_budgets_beyond_the_disk_are_a_warning(inv_path):
    import yaml

    from buildkit_ops.inventory.daemons import daemons
    from buildkit_ops.roles.buildkitd import parse
    data = yaml.safe_load(inv_path.read_text())
    data["all"]["vars"]["tenants"] = {"red": {"buildkit": {"gc": {"policies": [{"all": True, "max_used": "60GB"}]}}},
                                      "blue": {"hosts": ["build2"]}}
    inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
    st, hs = judged(inv_path)          # the fleet's daemon: 10GB; red's 60GB; a 100 GB disk: fits
    inv = I.load(inv_path)
    h = inv.hosts["build1"]
    facts = {"buildkitd": parse({"tenant_daemons": "old\nred"}),           # the daemons found on the host
             "buildkitd[red]": parse({"container": "exited 2026-12-01T00:00:00Z sha256:x x"})}
    status_tenants.read(daemons(inv, h), facts, {"disk": "50000000000 40000000000"}, {"red": []},
                        dt.datetime.now(dt.timezone.utc), hs)
    assert set(hs.tenants) == {"red"} and hs.stale_tenants == ["old"]
    assert hs.tenants["red"].cache.gc_limit == 60 * 10**9
    hs.cache.disk_size = 50 * 10**9     # a smaller disk: 10 GB + 60 GB no longer fit
    st = Status()
    status_tenants.judge(h, hs, st)
    assert st.warnings == [
        "build1: tenant red's buildkitd is exited: run `invoke provision --host build1`",
        "build1: the daemon of tenant old, no longer placed on this host, is kept with its cache: `bkops "
        "remove-tenant old --confirm` removes it",
        "build1: the GC budgets of its daemons (default 10.0 GB, red 60.0 GB) add up to 70.0 GB, more than the disk's "
        "50.0 GB: one tenant can fill the disk before another's GC acts; lower a tenant's buildkit.gc (max_used) or "
        "add disk"]


def test_a_ci_issuer_that_is_not_running_fails_status_where_there_are_trusts(inv_path):
    st, hs = judged(inv_path)
    assert hs.ci_issuer is None and st.failures == []        # no trusts: nothing said of it
    h = I.load(inv_path).hosts["build1"]
    hs.ci_issuer = "failed"
    status.judge(h, hs, st)
    assert st.failures == ["build1: the CI issuer is failed: CI jobs get no certificate there; run "
                           "`invoke provision --host build1`"]


def test_the_ci_trusts_networks_are_no_extra_addresses_of_the_allowlist(inv_path):
    import yaml
    data = yaml.safe_load(inv_path.read_text())
    data["all"]["vars"]["ci_trust"] = {"github": {
        "issuer": "https://token.actions.githubusercontent.com", "audience": "buildkit-ops",
        "networks": ["10.77.0.128/26"], "rules": [{"claims": {"repository": "org/app"}}]}}
    inv_path.write_text(yaml.safe_dump(data, sort_keys=False))
    members = "laptop 10.77.0.21\nci-github-1 10.77.0.128/26"
    st, hs = judged(inv_path, fw={"ufw_present": "yes", "ufw_status": ACTIVE, "ufw_ipv6": "yes", "ipset_present": "yes",
                                  "fw_members": members, "fw_set": "10.77.0.21\n10.77.0.128/26",
                                  "fw_set_rules": "ufw-before-input buildkit-ops-clients:1234,1235:any",
                                  "fw_hooked": "yes"})
    assert hs.firewall.allowed == ["10.77.0.128/26", "10.77.0.21"] and st.warnings == [], st.warnings
