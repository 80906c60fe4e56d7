"""The runner knows no role: a role it has never seen (defined here, with its own facts.sh, a managed file,
a step, a handler and a verify) goes through gather -> plan -> apply -> handler -> verify, and a second
run changes nothing. The "host" is a scratch directory on this machine, run with sh."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from buildkit_ops import roles
from buildkit_ops.engine.contract import Context, Handler, HandlerResult, Role, Step, file_steps
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.runner import run_host
from buildkit_ops.engine.shell import quote
from buildkit_ops.report.output import HostResult, Reporter


class LocalSession:
    """Runs scripts here with sh (the scripts only touch the scratch directory), counting them."""

    def __init__(self):
        self.commands = 0

    def run(self, script: str, upload: str | None = None, timeout: float = 600) -> tuple[int, str, str]:
        self.commands += 1
        r = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout, r.stderr


class Greeter(Role):
    """A role nobody wrote the runner for: one managed file, a marker it keeps, a handler, a verify."""
    name = "greeter"

    def __init__(self, root: Path):
        self.root = root
        (root / "facts.sh").write_text('echo @@greeter_marker; cat "$GREETER_DIR/marker" 2>/dev/null || true\n')
        self.handlers = {"reload greeter": Reload(root)}

    @property
    def facts_file(self) -> str:
        return (self.root / "facts.sh").read_text()

    def fact_env(self, ctx: Context) -> dict[str, str]:
        return {"GREETER_DIR": str(self.root)}

    def parse(self, sections: dict[str, str]) -> dict[str, str]:
        return {"marker": sections.get("greeter_marker", ""), "reloaded": sections.get("reloaded", "")}

    def files(self, ctx: Context) -> list[File]:
        return [File(str(self.root / "hello.txt"), b"hello\n", 0o644)]

    def plan(self, ctx: Context, facts: Any, files: dict[str, FileState]) -> list[Step]:
        steps = file_steps(self.name, self.files(ctx), files, ["reload greeter"])
        if facts["marker"] == "on":
            steps.append(Step(self.name, "marker", False))
        else:
            steps.append(Step(self.name, "marker", True, "set", script=f"echo on > {quote(str(self.root / 'marker'))}\n"))
        return steps

    def verify(self, ctx: Context, facts: Any, sess: Any, probe: Any, restarted: bool) -> str | None:
        return f"marker {facts['marker']}, reloaded {facts['reloaded'] or 'no'}"


class Reload(Handler):
    name = "reload greeter"

    def __init__(self, root: Path):
        self.root = root

    def script(self, ctx: Context) -> str:
        d = quote(str(self.root))
        return f"touch {d}/reloaded; echo @@reloaded; echo yes; echo @@greeter_marker; cat {d}/marker\n"

    def result(self, ctx: Context, rc: int, out: dict[str, str], err: str) -> HandlerResult:
        return HandlerResult("reloaded", sections=out)


def run(root: Path, check: bool = False) -> tuple[HostResult, LocalSession]:
    sess, res = LocalSession(), HostResult("local")
    ctx = Context(inv=None, host=None, tls={}, image_id=None, clients={})  # type: ignore[arg-type]
    run_host(sess, [Greeter(root)], ctx, check, Reporter(quiet=True), res)
    return res, sess


def statuses(res: HostResult) -> list[tuple[str, str]]:
    return [(s["name"], s["status"]) for s in res.steps]


def test_a_role_the_runner_never_heard_of_goes_through_every_stage(tmp_path):
    res, _ = run(tmp_path, check=True)
    assert statuses(res) == [(str(tmp_path / "hello.txt"), "would change"), ("marker", "would change"),
                             ("reload greeter (handler)", "would change")]
    assert not (tmp_path / "hello.txt").exists()  # check mode changed nothing

    res, sess = run(tmp_path)
    assert statuses(res) == [(str(tmp_path / "hello.txt"), "changed"), ("marker", "changed"),
                             ("reload greeter (handler)", "changed"), ("verified", "ok")]
    assert res.steps[-1]["detail"] == "marker on, reloaded yes"
    assert (tmp_path / "hello.txt").read_text() == "hello\n" and (tmp_path / "reloaded").exists()
    assert sess.commands == 3  # gather, one batch of changes, the handler

    (tmp_path / "reloaded").unlink()
    res, sess = run(tmp_path)
    assert [s for _, s in statuses(res)] == ["ok", "ok", "ok"] and sess.commands == 1
    assert not (tmp_path / "reloaded").exists()  # nothing notified: the handler did not run


def test_the_runner_and_the_provision_flow_name_no_role():
    root = Path(roles.__file__).parent
    names = [p.name for p in root.iterdir() if (p / "__init__.py").exists()]
    assert sorted(names) == sorted(roles.ORDER)  # every role folder is in the ordered list, and only those
    for module in ("runner.py",):
        text = (root.parent / module).read_text()
        assert not [n for n in names if re.search(rf"\b{n}\b", text)], module


def test_adding_a_role_is_a_folder_and_one_line(tmp_path, monkeypatch):
    """A copy of the roles package with one more folder and one more line in ORDER loads it, in order."""
    import shutil
    pkg = tmp_path / "buildkit_ops"
    shutil.copytree(Path(roles.__file__).parent.parent, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    (pkg / "roles" / "greeter").mkdir()
    (pkg / "roles" / "greeter" / "facts.sh").write_text("echo @@greeting; echo hi\n")
    (pkg / "roles" / "greeter" / "__init__.py").write_text(
        "from .. import Role\n\nclass Greeter(Role):\n    name = 'greeter'\n\nROLE = Greeter()\n")
    order = pkg / "roles" / "__init__.py"
    order.write_text(order.read_text().replace('"connections"]', '"connections", "greeter"]'))
    r = subprocess.run([sys.executable, "-c", "from buildkit_ops import roles; r = roles.load(); "
                        "print([x.name for x in r]); print(r[-1].facts_script.strip())"],
                       cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["['engine', 'firewall', 'emulation', 'buildkitd', 'prune', 'connections', 'greeter']", "echo @@greeting; echo hi"]


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
    ctx = Context(inv=None, host=None, tls={}, image_id=None, clients={})  # type: ignore[arg-type]
    assert role.sentinel == "greeter_marker"
    sess = Flaky(1)
    facts, _, _ = gather(sess, [role], ctx, [])
    assert sess.commands == 2 and "greeter" in facts
    sess = Flaky(2)
    try:
        gather(sess, [role], ctx, [])
        raise AssertionError("planned from facts that never came")
    except RemoteError as e:
        assert "no answer for greeter_marker" in str(e) and sess.commands == 2
