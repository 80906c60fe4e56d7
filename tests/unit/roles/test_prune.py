"""The prune role: a systemd timer from buildkit.prune_schedule, its unit keeping its structure whatever the
filters, and removed again when the key goes."""
from __future__ import annotations

import copy

import pytest
from unit_helpers import HOST, HOSTILE, file_facts, parse_unit, systemd_words

from buildkit_ops import inventory as I
from buildkit_ops.engine import render
from buildkit_ops.engine.render import parse_file_states
from buildkit_ops.inventory import PruneSchedule
from buildkit_ops.roles import prune


def test_prune_plan():
    h = copy.deepcopy(HOST)
    h.buildkit.prune_schedule = PruneSchedule(calendar="weekly", keep_storage=5 * 10**9, all=True)
    files = prune.render(h)
    assert b"prune --keep-storage 5000 --all" in files[0].content and b"OnCalendar=weekly" in files[1].content
    fresh = prune.plan(h, files, prune.parse({"prune_units": "", "prune_timer": ""}), {})
    assert [(s.name, s.changed) for s in fresh] == [("buildkit-ops-prune.service", True),
                                                     ("buildkit-ops-prune.timer", True), ("timer enabled", True)]
    converged = prune.parse({"prune_units": "\n".join(f.path for f in files), "prune_timer": "enabled\nactive"})
    states = parse_file_states(file_facts(files))
    assert not any(s.changed for s in prune.plan(h, files, converged, states))
    h.buildkit.prune_schedule = None
    [gone] = prune.plan(h, prune.render(h), converged, states)
    assert gone.changed and "systemctl disable --now buildkit-ops-prune.timer" in gone.script
    assert prune.plan(h, [], prune.parse({"prune_units": "", "prune_timer": ""}), {}) == []


@pytest.mark.parametrize("evil", HOSTILE)
def test_prune_unit_keeps_its_structure_whatever_the_filters(host, evil):
    host.buildkit.prune_schedule = I.PruneSchedule(calendar="daily", filters=[evil], keep_storage=10**9)
    service = parse_unit(prune.render(host)[0].content.decode())
    assert set(service) == {"Unit", "Service"} and set(service["Service"]) == {"Type", "ExecStart"}
    # what systemd will run, word for word, written here (not computed by the code under test)
    assert systemd_words(service["Service"]["ExecStart"]) == [
        "/usr/bin/docker", "exec", "buildkitd", "buildctl", "--addr", "unix:///run/buildkit/buildkitd.sock", "prune",
        "--keep-storage", "1000", "--filter", evil]


def test_a_calendar_that_no_unit_can_carry_is_refused_and_specifiers_are_escaped(host):
    host.buildkit.prune_schedule = I.PruneSchedule(calendar="daily\nExecStartPre=/bin/true", all=True)
    with pytest.raises(render.RenderError, match="control character"):
        prune.render(host)
    host.buildkit.prune_schedule = I.PruneSchedule(calendar="%h", all=True)
    timer = parse_unit(prune.render(host)[1].content.decode())
    assert timer["Timer"]["OnCalendar"] == "%%h"
