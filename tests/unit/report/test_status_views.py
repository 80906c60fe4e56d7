"""status in its three forms, from one typed tree: JSON keeps the shapes scripts read (an unreachable host is
only its error), Prometheus text has HELP and TYPE lines and escaped labels, the human form escapes markup."""
from __future__ import annotations

import json

from buildkit_ops.flows.status_tree import Buildkitd, Cache, Firewall, HostStatus, Status
from buildkit_ops.insights.builds import Window
from buildkit_ops.report import status_views as report


def tree() -> Status:
    up = HostStatus(reachable=True, home_of=["laptop"], docker="20.10.24", compose="2.26.1",
                    buildkitd=Buildkitd("running", "2026-12-01T00:00:00Z", "v0.13.2", "linux/amd64", "cni"),
                    cache=Cache(3, 5, 1, 100, 20, 10),
                    builds={"24h": Window(2, 0, 0, 1.5, 2.0, 0.5, {'ev"il\nx': 2})},
                    firewall=Firewall(True, True, ["10.77.0.21"], [], [], []))
    return Status(hosts={"build1": up, "build2": HostStatus(False, ["laptop2"], error="no answer")},
                  warnings=["build2: unreachable: no answer"])


def test_prometheus_text_has_help_type_and_escaped_labels():
    text = report.prometheus(tree())
    assert "# TYPE buildkit_ops_builds gauge" in text
    assert 'buildkit_ops_builds{host="build1",window="24h"} 2' in text
    assert 'buildkit_ops_build_seconds{host="build1",window="24h",quantile="0.95"} 2.0' in text
    assert 'buildkit_ops_client_builds{host="build1",window="24h",client="ev\\"il\\nx"} 2' in text
    assert 'buildkit_ops_gc_limit_bytes{host="build1"} 10' in text and 'buildkit_ops_up{host="build2"} 0' in text
    assert all(line.startswith(("#", "buildkit_ops_")) for line in text.splitlines())


def test_the_json_keeps_its_shapes():
    doc = json.loads(report.as_json(tree()))
    assert set(doc) == {"ca", "hosts", "clients", "warnings", "failures"}
    assert doc["hosts"]["build2"] == {"reachable": False, "error": "no answer", "home_of": ["laptop2"]}
    b1 = doc["hosts"]["build1"]
    assert set(b1) == {"reachable", "home_of", "docker", "compose", "buildkitd", "cache", "builds",
                       "server_certificate", "firewall", "crl", "tenants", "stale_tenants", "vpn", "ci_issuer"}
    assert b1["buildkitd"]["state"] == "running" and b1["cache"]["total"] == 5 and b1["firewall"]["ipv6"] is True
    assert b1["builds"]["24h"]["median_seconds"] == 1.5
    assert not tree().ok   # an unreachable host fails status


def test_the_human_form_shows_each_host_and_escapes_values(capsys):
    st = tree()
    st.warnings.append("[red]not markup[/red]")
    report.human(st)
    err = capsys.readouterr().err
    assert "build1: docker 20.10.24, compose 2.26.1, buildkitd running v0.13.2" in err
    assert "build2: unreachable no answer" in err and "[red]not markup[/red]" in err
