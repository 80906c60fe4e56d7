"""status in Prometheus text format: HELP and TYPE lines, escaped labels."""
from __future__ import annotations

from buildkit_ops.report.prometheus import prometheus


def test_prometheus_text_has_help_type_and_escaped_labels():
    doc = {"hosts": {"build1": {"reachable": True, "cache": {"total": 5, "gc_limit": 10, "disk_free": 20},
                                "builds": {"24h": {"builds": 2, "failed": 0, "running": 0, "median_seconds": 1.5,
                                                   "p95_seconds": 2.0, "cache_hit_ratio": 0.5,
                                                   "clients": {'ev"il\nx': 2}}}},
                     "build2": {"reachable": False}}}
    text = prometheus(doc)
    assert "# TYPE buildkit_ops_builds gauge" in text
    assert 'buildkit_ops_builds{host="build1",window="24h"} 2' in text
    assert 'buildkit_ops_build_seconds{host="build1",window="24h",quantile="0.95"} 2.0' in text
    assert 'buildkit_ops_client_builds{host="build1",window="24h",client="ev\\"il\\nx"} 2' in text
    assert 'buildkit_ops_up{host="build2"} 0' in text
    assert all(line.startswith(("#", "buildkit_ops_")) for line in text.splitlines())
