"""cache-prune's decisions: what the command line asks for, checked like inventory values, and the one buildctl
command it becomes (every value a quoted word)."""
from __future__ import annotations

import shlex

import pytest

from buildkit_ops.errors import FlowError
from buildkit_ops.flows import cache_prune


def test_the_criteria_become_one_buildctl_prune_with_each_value_one_word():
    what = cache_prune.Criteria.parse("5GB", "7d", ["type==exec.cachemount", "id!=x"], True, check=False)
    assert (what.keep_storage, what.keep_duration) == (5 * 10**9, 7 * 86400)
    words = shlex.split(cache_prune.prune_command(what, "docker exec buildkitd buildctl --addr "
                                                         "unix:///run/buildkit/buildkitd.sock"))
    assert words[:7] == ["docker", "exec", "buildkitd", "buildctl", "--addr", "unix:///run/buildkit/buildkitd.sock",
                         "prune"]
    assert words[7:] == ["--format", "{{json .}}", "--keep-storage", "5000.000000", "--keep-duration", "604800s",
                         "--filter", "type==exec.cachemount", "--filter", "id!=x", "--all"]


@pytest.mark.parametrize("args,message", [
    ((None, None, [], False), "say what to prune: --keep-storage, --keep-duration, --filter and/or --all"),
    (("lots", None, [], False), "--keep-storage takes a size such as 5GB"),
    ((None, "a week", [], False), "a duration such as 48h or 7d"),
    ((None, None, ["type==x;reboot"], False), "--filter: 'type==x;reboot' is not"),
])
def test_a_bad_or_missing_criterion_is_refused_as_bad_input(args, message):
    with pytest.raises(FlowError, match=message.replace("?", r"\?")) as e:
        cache_prune.Criteria.parse(*args, check=False)
    assert e.value.code == 2


def test_check_mode_needs_no_criterion():
    assert cache_prune.Criteria.parse(None, None, [], False, check=True) == cache_prune.Criteria()
