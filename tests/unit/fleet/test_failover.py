"""The client's failover proxy and the builder's nodes: which host backs up which, each platform declared by one
node only (buildx strips a platform from every other node when a node declares it), and a configuration that
no value can break out of."""
from __future__ import annotations

import dataclasses

import pytest
import yaml
from conftest import ROOT

from buildkit_ops import inventory as I
from buildkit_ops.engine.render import RenderError
from buildkit_ops.fleet import failover, placement
from buildkit_ops.fleet.nodes import client_nodes
from buildkit_ops.inventory.model import FLEET_NAME
from buildkit_ops.roles.failover_proxy import proxy_config


def lab_inventory(tmp_path, edit=lambda d: None) -> I.Inventory:
    data = yaml.safe_load((ROOT / "inventory.yml").read_text())
    edit(data)
    (tmp_path / "inv.yml").write_text(yaml.safe_dump(data))
    return I.load(tmp_path / "inv.yml")


REPORTED = {"build1": "linux/amd64,linux/arm64", "build2": "linux/amd64,linux/arm64,linux/386"}


def test_each_platform_is_declared_by_the_first_node_that_serves_it(tmp_path):
    inv = lab_inventory(tmp_path)   # build1 declares linux/amd64; build2 emulates arm64 and reports the rest
    laptop = dataclasses.replace(inv.clients["laptop"], home="build1")
    nodes = client_nodes(inv, laptop, REPORTED)
    assert [(n.name, n.platforms) for n in nodes] == [
        ("buildkit-ops-build1", "linux/amd64"), ("buildkit-ops-build2", "linux/arm64,linux/386")]
    away = dataclasses.replace(laptop, home="build2")
    nodes = client_nodes(inv, away, REPORTED)
    assert [(n.name, n.platforms) for n in nodes] == [
        ("buildkit-ops-build2", "linux/amd64,linux/arm64,linux/386"), ("buildkit-ops-build1", "")]


def test_with_failover_every_node_is_a_local_listener_checking_the_fleet_name(tmp_path):
    inv = lab_inventory(tmp_path)
    laptop = dataclasses.replace(inv.clients["laptop"], home="build1")
    nodes = client_nodes(inv, laptop, REPORTED)
    assert [(n.endpoint, n.servername) for n in nodes] == [("tcp://127.0.0.1:12340", FLEET_NAME),
                                                                 ("tcp://127.0.0.1:12341", FLEET_NAME)]
    assert FLEET_NAME in inv.hosts["build1"].sans and FLEET_NAME in inv.hosts["build2"].sans
    direct = client_nodes(inv, dataclasses.replace(laptop, failover="none"), REPORTED)
    assert [(n.endpoint, n.servername) for n in direct] == [("tcp://10.77.0.11:1234", "10.77.0.11"),
                                                                  ("tcp://10.77.0.12:1234", "10.77.0.12")]


def test_a_node_falls_back_only_to_hosts_that_serve_all_its_platforms(tmp_path):
    inv = lab_inventory(tmp_path)
    laptop = dataclasses.replace(inv.clients["laptop"], home="build1")
    ls = failover.listeners(laptop, placement.placed(laptop, list(inv.hosts.values()), REPORTED))
    # build1 (amd64) can be replaced by build2 (amd64 and more); build2 (arm64 too) by nobody
    assert [(li.name, li.port, [s.name for s in li.servers]) for li in ls] == [
        ("build1", 12340, ["build1", "build2"]), ("build2", 12341, ["build2"])]
    text = proxy_config.config(ls)
    assert "listen build1\n    bind 127.0.0.1:12340\n" in text and "tcp-check expect binary 1603\n" \
        "    server build1 10.77.0.11:1234\n    server build2 10.77.0.12:1234 backup\n" in text
    assert "on-error mark-down" in text and "option redispatch" in text


def spill_proxy(tmp_path, placement_: str):
    inv = lab_inventory(tmp_path)
    laptop = dataclasses.replace(inv.clients["laptop"], home="build1", failover="proxy", placement=placement_)
    tls = {"ca.pem": b"CA\n", "cert.pem": b"CERT\n", "key.pem": b"KEY\n"}
    return laptop, proxy_config.proxy(laptop, placement.placed(laptop, list(inv.hosts.values()), REPORTED),
                                      proxy_config.Templates(proxy_config.TEMPLATES), tls)


def test_with_spill_each_host_is_asked_for_room_over_mutual_tls_and_home_takes_a_build_when_all_are_full(tmp_path):
    _, p = spill_proxy(tmp_path, "spill")
    build1 = p.config[p.config.index("listen build1"):p.config.index("listen build2")]
    tls = (f"check-ssl crt {proxy_config.CLIENT_PEM} ca-file {proxy_config.CA_PEM} verify required "
           f"verifyhost {FLEET_NAME} check-sni {FLEET_NAME}")
    assert f"http-check send meth GET uri /bkops/room ver HTTP/1.1 hdr host {FLEET_NAME}\n" in build1
    assert "http-check connect ssl alpn h2,http/1.1\n" in build1 and "http-check expect ! status 503\n" in build1
    assert f"    server build1 10.77.0.11:1234 {tls}\n    server build2 10.77.0.12:1234 backup {tls}\n" \
           f"    server build1-when-all-are-full 10.77.0.11:1234 backup no-check ca-file {proxy_config.CA_PEM} " \
           f"verify required\n" in build1
    assert "tcp-check" not in build1 and "balance" not in build1
    # the client's certificate and key, and the CA, go into the container (a new certificate: new files, the same
    # container)
    assert p.files == {proxy_config.CLIENT_PEM: b"CERT\nKEY\n", proxy_config.CA_PEM: b"CA\n"}
    _, other = spill_proxy(tmp_path, "spill")
    other.files[proxy_config.CLIENT_PEM] = b"CERT2\nKEY2\n"
    assert other.config == p.config and other.label == p.label and other.tls_sum != p.tls_sum


def test_least_busy_balances_every_host_with_room_and_home_asks_nothing(tmp_path):
    _, p = spill_proxy(tmp_path, "least-busy")
    build1 = p.config[p.config.index("listen build1"):p.config.index("listen build2")]
    assert "balance leastconn" in build1 and "server build2 10.77.0.12:1234 check-ssl" in build1
    laptop, home = spill_proxy(tmp_path, "home")
    assert "/bkops/room" not in home.config and home.files == {} and "tcp-check expect binary 1603" in home.config
    # (before the client's certificate is issued, its hosts are checked as with home)
    assert proxy_config.proxy(laptop, [], proxy_config.Templates(proxy_config.TEMPLATES), None).files == {}


def test_a_host_address_cannot_add_a_line_to_the_proxy_configuration(tmp_path):
    inv = lab_inventory(tmp_path)
    laptop = inv.clients["laptop"]
    ls = failover.listeners(laptop, placement.placed(laptop, list(inv.hosts.values()), REPORTED))
    ls[0].servers[0] = failover.Server("build1", "10.77.0.11:1234\n    server evil 192.0.2.1:1234")
    with pytest.raises(RenderError, match="not one plain word"):
        proxy_config.config(ls)


def test_an_ipv6_host_is_written_in_brackets(tmp_path):
    inv = lab_inventory(tmp_path)
    h = dataclasses.replace(inv.hosts["build1"], client_address="fd00:10:77::11")
    assert failover.endpoint(h) == "[fd00:10:77::11]:1234"


def test_failover_keys_are_checked(tmp_path):
    from unit_helpers import refusal
    assert refusal(tmp_path, lambda d: d["all"]["children"]["clients"]["hosts"]["laptop"].update(failover="yes")) == (
        "inv.yml: all.children.clients.hosts.laptop.failover: 'yes' is not allowed\n  fix: use one of: none, proxy")

    def two_hosts_from_the_last_port(d):
        d["all"]["children"]["buildhosts"]["hosts"]["build2"] = {"address": "10.0.0.12"}
        d["all"]["children"]["clients"]["hosts"]["laptop"].update(failover="proxy", failover_port=65535)
    assert "failover_port: 65535 leaves no room for one port per build host (2)" in refusal(
        tmp_path, two_hosts_from_the_last_port)


def test_an_ipv6_host_is_bracketed_in_the_builders_endpoints_too(tmp_path):
    inv = lab_inventory(tmp_path, lambda d: d["all"]["children"]["buildhosts"]["hosts"]["build1"].update(
        client_address="fd00:10:77::11"))
    direct = dataclasses.replace(inv.clients["laptop"], failover="none", home="build1")
    [b1, _] = client_nodes(inv, direct, REPORTED)
    assert (b1.endpoint, b1.servername) == ("tcp://[fd00:10:77::11]:1234", "fd00:10:77::11")


def test_a_new_certificate_goes_into_the_running_proxy_which_reloads_and_only_a_new_configuration_recreates_it(
        tmp_path):
    from buildkit_ops.roles import failover_proxy as role
    laptop, p = spill_proxy(tmp_path, "spill")
    same = role.ProxyFacts("sha256:img", f"true {p.label}", p.tls_sum)
    assert [s.changed for s in role.plan(laptop, p, same)][1:] == [False]
    rotated = role.ProxyFacts("sha256:img", f"true {p.label}", "an earlier certificate's sum")
    steps = role.plan(laptop, p, rotated)
    assert [(s.name, s.changed) for s in steps[1:]] == [(f"failover proxy {failover.container_name(laptop)}", False),
                                                        ("failover proxy certificates", True)]
    script = steps[-1].script
    assert "docker kill -s USR2" in script and "docker rm" not in script and "docker create" not in script
    assert f"{proxy_config.TLS_SUM}" in script and "KEY" not in script      # (the key travels in base64 only)
    _, home = spill_proxy(tmp_path, "home")
    recreated = role.plan(laptop, home, rotated)[-1]
    assert recreated.changed and "docker rm -f" in recreated.script and "tls.sum" not in recreated.script
