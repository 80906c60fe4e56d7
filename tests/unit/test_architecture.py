"""The shape the code promises, checked on its source: roles are reached only through their exports, the shared
context holds only what more than one role reads, nothing matches a step by its title, there is no import
cycle, and the runner names no role."""
from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

from conftest import ROOT

from buildkit_ops.engine import role_path
from buildkit_ops.engine.contract import Context

PRODUCT = sorted((ROOT / "buildkit_ops").rglob("*.py"))
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "__init__.py").exists())


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "roles":
        parts = ["buildkit_ops", *parts]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> list[str]:
    """The modules a file imports (`from a.b import c` counts as a.b.c when a.b.c is a module, else a.b)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_code_outside_a_role_reaches_it_only_through_its_exports():
    files = PRODUCT + [p for r in ROLES for p in r.rglob("*.py")]
    wrong = []
    for f in files:
        own = f.relative_to(ROOT).parts[1] if f.relative_to(ROOT).parts[0] == "roles" else None
        for name in imports(f):
            m = re.match(r"buildkit_ops\.roles\.(\w+)(?:\.(\w+))?", name)
            if m and m.group(1) != own and m.group(2) != "exports":
                wrong.append(f"{f.relative_to(ROOT)} imports {name}")
    assert wrong == []


def test_the_shared_context_holds_only_what_more_than_one_role_reads():
    fields = {f.name for f in dataclasses.fields(Context)}
    assert fields == {"target", "input", "rendered", "instance", "item"}
    readers: dict[str, set[str]] = {f: set() for f in fields}
    for role in ROLES:
        text = "".join(p.read_text() for p in role.rglob("*.py"))
        for f in fields:
            if re.search(rf"\bctx\.{f}\b", text):
                readers[f].add(role.name)
    # `input` is each role's own (prepared by it), `target` is every role's; `rendered` is the runner's cache of a
    # role's files, read through Role.managed (a handler may read it too); `instance` and `item` are the runner's
    # (an instance's name and what it is applied to: a role reads its item through its own input)
    assert len(readers["target"]) >= 2 and len(readers["input"]) >= 2, readers
    assert readers["rendered"] <= {"buildkitd", "gateway"}, readers
    assert readers["instance"] == readers["item"] == set(), readers


def test_no_code_matches_a_step_by_its_title():
    """Outcomes that flows act on are typed (Outcome, HostResult.restarted / firewall_changed / step_for)."""
    pattern = re.compile(r"""(\.name|\[["']name["']\])\s*(==|!=|\.startswith\(|\.endswith\(|in\s)|"""
                         r"""(steps|step)\b[^\n]*\bname\b[^\n]*(startswith|==)""")
    hits = []
    for f in PRODUCT + [p for r in ROLES for p in r.rglob("*.py")]:
        for i, line in enumerate(f.read_text().splitlines(), 1):
            if pattern.search(line) and re.search(r"\b(s|st|step|steps|r\.steps|res\.steps)\b", line):
                hits.append(f"{f.relative_to(ROOT)}:{i}: {line.strip()}")
    assert hits == []


def test_there_is_no_import_cycle_in_the_product():
    names = {module_name(p): p for p in PRODUCT + [p for r in ROLES for p in r.rglob("*.py")]}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        for imp in imports(path):
            while imp and imp not in names:
                imp = imp.rpartition(".")[0]
            if imp and imp != name:
                deps.add(imp)
        graph[name] = deps
    state: dict[str, int] = {}
    cycles = []

    def visit(n: str, stack: list[str]) -> None:
        state[n] = 1
        for d in graph[n]:
            if state.get(d) == 1:
                cycles.append(" -> ".join(stack[stack.index(d):] + [d]) if d in stack else f"{n} -> {d}")
            elif d not in state:
                visit(d, [*stack, d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    # (a package imports its own modules to name its public surface: buildkit_ops.inventory -> .loader, .model)
    cycles = [c for c in cycles if not _package_to_own_module(c)]
    assert cycles == []


def _package_to_own_module(cycle: str) -> bool:
    hops = cycle.split(" -> ")
    return any(b.startswith(a + ".") for a, b in zip(hops, hops[1:], strict=False))


OUTCOMES = {"firewall"}   # Outcome.FIREWALL names what a step decides (who reaches the port), not the role


def test_the_runner_and_the_flows_name_no_role_of_their_own_accord():
    """The runner and the contract name no role at all; role_path holds the one ordered list of the built-in ones,
    and every role folder is in it."""
    names = [r.name for r in ROLES]
    assert sorted(names) == sorted(n for order in role_path.ORDER.values() for n in order)
    for module in ("engine/runner.py", "engine/contract.py", "engine/facts.py", "engine/session.py"):
        text = "\n".join(line for line in (ROOT / "buildkit_ops" / module).read_text().splitlines()
                         if not line.startswith(("from ", "import ")))   # (the `engine` package is not the role)
        named = [n for n in names if re.search(rf"['\"]{n}['\"]|\b{n}\.", text) and n not in OUTCOMES]
        assert named == [], (module, named)


def test_no_test_file_is_longer_than_about_300_lines():
    long = [(str(p.relative_to(ROOT)), n) for p in (ROOT / "tests").rglob("test_*.py")
            if (n := len(p.read_text().splitlines())) > 320]
    assert long == []


def managed_names(tmp_path) -> set[str]:
    """What the host roles manage, as code elsewhere would name it: each file's path under data_dir when it has a
    folder (gateway/crl.pem, tls/server.crt, tenants/...), and each systemd unit's name; from the files the roles
    render for an inventory with a tenant and a prune schedule."""
    from unit_helpers import load_text, mutate

    from buildkit_ops.engine import runner
    from buildkit_ops.engine.contract import Options

    def edit(d):
        d["all"]["vars"]["tenants"] = {"red": {}}
        d["all"]["vars"]["buildkit"] = {"prune_schedule": {"calendar": "daily", "all": True}}
    inv = load_text(tmp_path, mutate(edit))
    h = inv.hosts["build1"]
    paths = {f.path for r, c in runner.prepare(inv, h, role_path.load(None), Options(check=True)) for f in r.managed(c)}
    names = set()
    for p in paths:
        under = p.removeprefix(h.buildkit.data_dir + "/")
        if p.startswith("/etc/systemd/"):
            names.add(Path(p).stem.removesuffix("-red"))
        elif "/" in under:
            names.add(under.replace("/red/", "/"))
    return names


def test_no_module_outside_a_role_names_a_file_a_role_manages(tmp_path):
    """A role's files, units and folders are its own: others use what its exports.py offers (a fact, a name)."""
    names = managed_names(tmp_path)
    assert {"gateway/crl.pem", "tls/server.crt", "tenants/fence.sh", "buildkit-ops-prune"} <= names, names
    found = []
    for f in PRODUCT:
        text = f.read_text()
        found += [f"{f.relative_to(ROOT)} names {n}" for n in sorted(names) if n in text]
    assert found == []
