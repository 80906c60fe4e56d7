"""The runner names no role: a role it never heard of goes through every stage; facts are cached on the host by
their inputs, and facts that did not run are read again, never planned from; steps run in batches that stop at
the first failure."""
from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from buildkit_ops.engine import runner
from buildkit_ops.engine.contract import Context, Handler, HandlerResult, Options, Outcome, Role, Step
from buildkit_ops.engine.facts import sections
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.session import LocalSession
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.steps import file_steps
from buildkit_ops.report.results import HostResult, Reporter


class Greeter(Role[Path, str, dict[str, str]]):
    """A role nobody wrote the runner for: its target is a scratch directory; one managed file, a marker it keeps,
    a handler, a verify, and an input it prepares (the greeting)."""
    name = "greeter"

    def __init__(self, root: Path):
        (root / "facts.sh").write_text('echo @@greeter_marker; cat "$GREETER_DIR/marker" 2>/dev/null || true\n')
        self.folder = root
        self.handlers = {"reload greeter": Reload()}

    def prepare(self, inv: Any, target: Path, options: Options) -> str:
        return "hello\n"

    def fact_env(self, target: Path) -> dict[str, str]:
        return {"GREETER_DIR": str(target)}

    def parse(self, sections: dict[str, str]) -> dict[str, str]:
        return {"marker": sections.get("greeter_marker", ""), "reloaded": sections.get("reloaded", "")}

    def files(self, ctx: Context[Path, str]) -> list[File]:
        return [File(str(ctx.target / "hello.txt"), ctx.input.encode(), 0o644)]

    def plan(self, ctx: Context[Path, str], facts: Any, files: dict[str, FileState]) -> list[Step]:
        steps = file_steps(self.name, self.managed(ctx), files, ["reload greeter"])
        if facts["marker"] == "on":
            steps.append(Step(self.name, "marker", False))
        else:
            steps.append(Step(self.name, "marker", True, "set", script=f"echo on > {quote(str(ctx.target / 'marker'))}\n"))
        return steps

    def verify(self, ctx: Context[Path, str], facts: Any, sess: Any, probe: Any, restarted: bool) -> str | None:
        return f"marker {facts['marker']}, reloaded {facts['reloaded'] or 'no'}"


class Reload(Handler[Path, str]):
    name = "reload greeter"

    def script(self, ctx: Context[Path, str]) -> str:
        d = quote(str(ctx.target))
        return f"touch {d}/reloaded; echo @@reloaded; echo yes; echo @@greeter_marker; cat {d}/marker\n"

    def result(self, ctx: Context[Path, str], rc: int, out: dict[str, str], err: str) -> HandlerResult:
        return HandlerResult("reloaded", sections=out)


def run(root: Path, check: bool = False) -> tuple[HostResult, LocalSession]:
    sess, res = LocalSession(), HostResult("local")
    plays = runner.prepare(None, root, [Greeter(root)], Options(check=check))  # type: ignore[arg-type]
    runner.run(sess, plays, check, Reporter(quiet=True), res)
    return res, sess


def statuses(res: HostResult) -> list[tuple[str, str]]:
    return [(s.name, s.status) for s in res.steps]


def test_a_role_the_runner_never_heard_of_goes_through_every_stage(tmp_path):
    res, _ = run(tmp_path, check=True)
    assert statuses(res) == [(str(tmp_path / "hello.txt"), "would change"), ("marker", "would change"),
                             ("reload greeter (handler)", "would change")]
    assert not (tmp_path / "hello.txt").exists()  # check mode changed nothing

    res, sess = run(tmp_path)
    assert statuses(res) == [(str(tmp_path / "hello.txt"), "changed"), ("marker", "changed"),
                             ("reload greeter (handler)", "changed"), ("verified", "ok")]
    assert res.steps[-1].detail == "marker on, reloaded yes"
    assert (tmp_path / "hello.txt").read_text() == "hello\n" and (tmp_path / "reloaded").exists()
    assert sess.commands == 3  # gather, one batch of changes, the handler

    (tmp_path / "reloaded").unlink()
    res, sess = run(tmp_path)
    assert [s for _, s in statuses(res)] == ["ok", "ok", "ok"] and sess.commands == 1
    assert not (tmp_path / "reloaded").exists()  # nothing notified: the handler did not run


def test_a_cached_fact_runs_once_per_key_and_a_failed_one_is_not_kept(tmp_path):
    from buildkit_ops.engine.facts import FACTS_CACHE
    script = FACTS_CACHE + f"""
export BKOPS_FACTS_CACHE={tmp_path}/cache
count() {{ echo run >> {tmp_path}/runs; echo "out $1"; }}
fail() {{ echo run >> {tmp_path}/runs; echo partial; return 1; }}
bkops_cached "key A" count a; bkops_cached "key A" count a; bkops_cached "key B" count b
bkops_cached "key C" fail; bkops_cached "key C" fail
"""
    r = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert r.stdout.split("\n") == ["out a", "out a", "out b", "partial", "partial", ""]
    assert (tmp_path / "runs").read_text().count("run") == 4   # a once, b once, the failing one each time
    assert len(list((tmp_path / "cache").iterdir())) == 2


def test_facts_that_did_not_run_at_all_are_read_again_never_planned_from(tmp_path):
    """A host too loaded to fork printed nothing for a role: the runner reads once more, and if the section
    is still missing it stops (no plan from facts that would say 'nothing is installed')."""
    from buildkit_ops.engine.runner import gather
    from buildkit_ops.engine.ssh import RemoteError

    class Flaky(LocalSession):
        def __init__(self, failures: int):
            super().__init__()
            self.failures = failures

        def run(self, script, upload=None, timeout=600):
            rc, out, err = super().run(script, upload, timeout)
            if self.failures:
                self.failures -= 1
                out = out.replace("@@greeter_marker", "")   # as if the snippet had not run
            return rc, out, err

    role = Greeter(tmp_path)
    assert role.sentinel == "greeter_marker"
    sess = Flaky(1)
    facts, _, _ = gather(sess, [(role, Context(tmp_path, None))], tmp_path, [])
    assert sess.commands == 2 and "greeter" in facts
    sess = Flaky(2)
    try:
        gather(sess, [(role, Context(tmp_path, None))], tmp_path, [])
        raise AssertionError("planned from facts that never came")
    except RemoteError as e:
        assert "no answer for greeter_marker" in str(e) and sess.commands == 2


def test_sections_split_facts_output():
    assert sections("junk\n@@a\n1\n2\n@@b\n\n@@c\nx") == {"a": "1\n2", "b": "", "c": "x"}


def test_batch_script_stops_at_the_first_failure_and_reports_it():
    import subprocess

    from buildkit_ops.engine.contract import Step
    from buildkit_ops.engine.runner import batch_script
    steps = [Step("a", "one", True, script="echo one > /dev/null\n"),
             Step("a", "two", True, script="echo broken >&2\nfalse\necho never\n"),
             Step("a", "three", True, script="echo three-ran\n")]
    r = subprocess.run(["sh", "-s"], input=batch_script(steps), capture_output=True, text=True)
    assert r.returncode == 1
    assert sections(r.stdout) == {"failed1": "broken"}


def test_every_roles_packages_are_installed_in_one_apt_transaction_that_waits_for_the_lock(tmp_path):
    steps = [Step("a", "docker", True, "install", script="systemctl enable --now docker\n", packages=["docker.io"],
                  apt_source="echo source >> calls\n"),
             Step("b", "a file", True, script="true\n"),
             Step("c", "tools", True, packages=["conntrack", "docker.io"]),
             Step("d", "nothing to install", False, packages=[])]
    out = runner.with_packages(steps)
    assert [s.name for s in out] == ["distribution packages", "docker", "a file", "tools", "nothing to install"]
    assert out[1].script == "systemctl enable --now docker\n" and not out[3].script
    assert runner.with_packages(steps[1:2]) == steps[1:2]   # nothing to install: no apt at all
    # run against a stand-in apt-get: the lists lock is held twice, then free
    (tmp_path / "apt-get").write_text(
        '#!/bin/sh\necho "apt-get $*" >> calls\n'
        'case "$*" in *update*) n=$(cat held 2>/dev/null || echo 0); echo $((n + 1)) > held\n'
        '  if [ "$n" -lt 2 ]; then echo "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 7 '
        '(apt-get)" >&2; exit 100; fi;; esac\n')
    (tmp_path / "apt-get").chmod(0o755)
    (tmp_path / "sleep").write_text("#!/bin/sh\n")
    (tmp_path / "sleep").chmod(0o755)
    r = subprocess.run(["sh", "-e"], input=out[0].script, capture_output=True, text=True, cwd=tmp_path,
                       env={"PATH": f"{tmp_path}:/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls[0] == "source"   # the apt source before the update
    assert calls[1:] == ["apt-get -q -o DPkg::Lock::Timeout=900 -o Acquire::Languages=none update"] * 3 + [
        "apt-get -q -o DPkg::Lock::Timeout=900 -o Acquire::Languages=none install -y --no-install-recommends docker.io "
        "conntrack"]
    assert r.stdout.startswith("bkops-told: waited for the package lock held by process 7 (apt-get); ")


def test_a_step_whose_script_carries_a_secret_is_never_shown_in_check_mode(tmp_path, capsys):
    secret = Step("x", "builder", True, "recreate", script="echo S3CRET-KEY | base64 -d > key\n", sensitive=True)
    plain = Step("x", "other", True, "run", script="echo visible\n")
    res = HostResult("t")
    runner._apply(LocalSession(), [secret, plain], True, Reporter(), res)
    err = capsys.readouterr().err
    assert "S3CRET" not in err and "echo visible" in err
    assert [s.status for s in res.steps] == ["would change", "would change"]


def test_a_handler_with_an_outcome_is_a_typed_field_of_the_result(tmp_path):
    class Restart(Reload):
        outcome = Outcome.RESTART

    role = Greeter(tmp_path)
    role.handlers = {"reload greeter": Restart()}
    res, sess = HostResult("local"), LocalSession()
    runner.run(sess, runner.prepare(None, tmp_path, [role], Options()), False, Reporter(quiet=True), res)  # type: ignore[arg-type]
    assert res.restarted and not res.firewall_changed
    again = HostResult("local")
    runner.run(sess, runner.prepare(None, tmp_path, [role], Options()), False, Reporter(quiet=True), again)  # type: ignore[arg-type]
    assert not again.restarted


def test_scripts_run_in_batches_around_an_upload_and_an_ok_step_costs_no_round_trip(tmp_path):
    (tmp_path / "archive").write_bytes(b"image bytes")
    d = quote(str(tmp_path))
    steps = [Step("r", "one", True, script=f"echo 1 >> {d}/log\n"),
             Step("r", "nothing to do", False),
             Step("r", "two", True, script=f"echo 2 >> {d}/log\n"),
             Step("r", "image", True, script=f"cat > {d}/loaded; echo up >> {d}/log\n", upload=str(tmp_path / "archive")),
             Step("r", "three", True, script=f"echo 3 >> {d}/log\n")]
    sess, res = LocalSession(), HostResult("local")
    runner._apply(sess, steps, False, Reporter(quiet=True), res)
    assert [(s.name, s.status) for s in res.steps] == [("one", "changed"), ("nothing to do", "ok"), ("two", "changed"),
                                                       ("image", "changed"), ("three", "changed")]
    assert sess.commands == 3   # one batch, the upload (started at once, on its own), one batch
    assert (tmp_path / "loaded").read_bytes() == b"image bytes"
    assert sorted((tmp_path / "log").read_text().split()) == ["1", "2", "3", "up"]
