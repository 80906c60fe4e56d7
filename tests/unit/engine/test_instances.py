"""A role applied once per item (Ansible's role with a loop), through the real runner on this machine: each
instance reads its own facts in the same command, writes its own files, runs its own handler when its own steps
notified it, and is named in the report; a second run changes nothing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from buildkit_ops.engine import runner
from buildkit_ops.engine.contract import Context, Handler, HandlerResult, Options, Role, Step
from buildkit_ops.engine.render import File, FileState
from buildkit_ops.engine.session import LocalSession
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.steps import file_steps
from buildkit_ops.report.results import HostResult, Reporter


class Kennel(Role[Path, str, dict[str, str]]):
    """One instance per dog: a folder of its own (the default instance: the kennel's own folder), a file and a
    marker; its handler barks in its own folder."""
    name = "kennel"

    def __init__(self, root: Path, dogs: tuple[str | None, ...]):
        (root / "facts.sh").write_text('echo @@kennel_marker; cat "$DIR/marker" 2>/dev/null || true\n')
        self.folder, self.dogs = root, dogs
        self.handlers = {"bark": Bark()}

    def instances(self, inv: Any, target: Path) -> tuple[str | None, ...]:
        return self.dogs

    def instance_name(self, item: str | None) -> str | None:
        return item

    def item_env(self, item: str | None) -> dict[str, str]:
        return {"DIR": str(self.home)} if item is None else {"DIR": str(self.home / item)}

    def prepare_item(self, inv: Any, target: Path, options: Options, item: str | None) -> str:
        return str(target if item is None else target / item)

    def parse(self, sections: dict[str, str]) -> dict[str, str]:
        return {"marker": sections.get("kennel_marker", "")}

    def files(self, ctx: Context[Path, str]) -> list[File]:
        return [File(ctx.input + "/name.txt", (ctx.input.rsplit("/", 1)[1] + "\n").encode(), 0o644)]

    def plan(self, ctx: Context[Path, str], facts: Any, files: dict[str, FileState]) -> list[Step]:
        steps = file_steps(self.name, self.managed(ctx), files, ["bark"])
        if facts["marker"] != "on":
            steps.append(Step(self.name, "marker", True, "set", script=f"mkdir -p {quote(ctx.input)}; echo on > "
                                                                       f"{quote(ctx.input + '/marker')}\n"))
        return steps


class Bark(Handler[Path, str]):
    name = "bark"

    def script(self, ctx: Context[Path, str]) -> str:
        return f"echo woof >> {quote(ctx.input + '/barks')}\n"

    def result(self, ctx: Context[Path, str], rc: int, out: dict[str, str], err: str) -> HandlerResult:
        return HandlerResult("barked")


def run(role: Kennel, root: Path) -> HostResult:
    role.home = root
    res = HostResult("local")
    runner.run(LocalSession(), runner.prepare(None, root, [role], Options()), False, Reporter(quiet=True), res)  # type: ignore[arg-type]
    return res


def test_each_instance_has_its_own_facts_files_and_handler(tmp_path):
    (tmp_path / "rex").mkdir()
    role = Kennel(tmp_path, (None, "rex", "fido"))
    first = run(role, tmp_path)
    assert [(s.who, s.name, s.status) for s in first.steps if s.status == "changed"] == [
        ("kennel", f"{tmp_path}/name.txt", "changed"), ("kennel", "marker", "changed"),
        ("kennel[rex]", f"{tmp_path}/rex/name.txt", "changed"), ("kennel[rex]", "marker", "changed"),
        ("kennel[fido]", f"{tmp_path}/fido/name.txt", "changed"), ("kennel[fido]", "marker", "changed"),
        ("kennel", "bark (handler)", "changed"), ("kennel[rex]", "bark (handler)", "changed"),
        ("kennel[fido]", "bark (handler)", "changed")]
    assert (tmp_path / "rex" / "name.txt").read_text() == "rex\n"
    assert first.steps[0].as_json()["instance"] is None and first.steps[2].as_json()["instance"] == "rex"
    again = run(role, tmp_path)
    assert [s for s in again.steps if s.status == "changed"] == []

    (tmp_path / "rex" / "name.txt").write_text("someone else\n")   # drift in one instance: its handler alone
    third = run(role, tmp_path)
    assert [(s.who, s.name) for s in third.steps if s.status == "changed"] == [
        ("kennel[rex]", f"{tmp_path}/rex/name.txt"), ("kennel[rex]", "bark (handler)")]
    assert [(tmp_path / d / "barks").read_text().count("woof") for d in ("", "rex", "fido")] == [1, 2, 1]
