"""The runner: one target (a build host, a client machine), its ordered roles, and nothing else. It names no
role.

  prepare  each role makes its own input on the operator machine (certificates, an allowlist, an image), once
           per instance for a role applied to several items of the target (buildkitd: each daemon);
  gather   every role's facts.sh and the state of every managed file, in ONE remote command (run in
           parallel on the host), while each role's probe (if any) starts on its own channel;
  plan     each role's pure plan from its parsed facts: steps, ok or changed (pending, for a role outside a run
           limited to some roles: reported, never applied). A PlanError (known before any
           change) stops the target here, nothing changed. The packages every role needs are installed in one
           apt transaction, first;
  check    in check mode: the unified diff of every file whose content would change (secrets masked), the
           commands of the other steps, the handlers that would run; nothing is changed;
  apply    consecutive changes in one batch (one round trip), each step's outcome kept apart; an upload
           (an image archive) streams on its own;
  handlers once each, at the end, when a step notified them; each owns its protocol with the host; a
           restart of a service that serves builds takes the fleet's one restart turn (rolling.py) until
           verify is done, so the hosts of one run restart one at a time;
  verify   each role proves its service works (after a handler ran, against the new one).
"""
from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from functools import partial
from pathlib import Path
from typing import Any

from buildkit_ops.engine import host_lock, rolling
from buildkit_ops.engine.compressed import upload_size
from buildkit_ops.engine.contract import (
    Context,
    HandlerFailed,
    Options,
    Outcome,
    Role,
    Session,
    Step,
    instance_key,
    play_key,
)
from buildkit_ops.engine.facts import facts_snippet, own_sections, parallel, sections
from buildkit_ops.engine.render import FileState, files_fact, parse_file_states, unified_diff
from buildkit_ops.engine.shell import command, quote
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.inventory import Inventory
from buildkit_ops.report.results import HostResult, Reporter

Play = tuple[Role[Any, Any, Any], Context[Any, Any]]


def prepare(inv: Inventory, target: Any, roles: list[Role[Any, Any, Any]], options: Options) -> list[Play]:
    """Each instance of each role that applies to the target, with the input it prepares for it on the operator
    machine."""
    return [(r, Context(target, r.prepare_item(inv, target, options, c.item), instance=c.instance, item=c.item))
            for r, c in fact_plays(inv, target, roles)]


def fact_plays(inv: Inventory, target: Any, roles: list[Role[Any, Any, Any]]) -> list[Play]:
    """Each instance of each role that applies to the target, without input: enough to read their facts
    (status)."""
    return [(r, Context(target, None, instance=r.instance_name(item), item=item))
            for r in roles if r.applies(target) for item in r.instances(inv, target)]


def prefix(play: Play) -> str:
    """Where an instance's facts sections are (none for a default instance: its sections keep their names)."""
    return "" if play[1].instance is None else play_key(*play) + "."


def gather(sess: Session, plays: list[Play], target: Any, paths: list[str],
           extra: Sequence[str] = (), before: str = "") -> tuple[dict[str, Any], dict[str, FileState], dict[str, str]]:
    """(play key -> parsed facts, path -> file state, raw sections) in one remote command. `extra` snippets
    (a status report's own) ride along in the same command; `before` runs first (the host lock's wait)."""
    script = before + parallel([files_fact(paths), *(facts_snippet(r, target, c.item, prefix((r, c)))
                                                     for r, c in plays), *extra])
    expected = {prefix((r, c)) + r.sentinel for r, c in plays if r.sentinel}
    for attempt in (1, 2):
        rc, out, err = sess.run(script)
        if rc != 0:
            raise RemoteError(f"reading the target's state failed ({rc}): {err.strip()[-500:]}")
        got = sections(out)
        missing = sorted(expected - set(got))
        if not missing:
            break
        # a snippet that printed nothing at all did not run (a host too loaded to fork): read once more
        # rather than plan from facts that say "nothing is installed"
        if attempt == 2:
            raise RemoteError(f"reading the target's state failed: no answer for {', '.join(missing)}; re-run")
    facts = {play_key(r, c): r.parse(own_sections(got, prefix((r, c)))) for r, c in plays}
    return facts, parse_file_states(got.get("files", "")), got


def plan(plays: list[Play], facts: dict[str, Any], states: dict[str, FileState],
         options: Options) -> list[list[Step]]:
    """Each play's steps, marked with its instance. A role outside the run's roles (options.roles) is planned
    too: what it would change is pending (reported, never applied, notifying nothing: in_run)."""
    planned = []
    for r, c in plays:
        steps = r.plan(c, facts[play_key(r, c)], states)
        for s in steps:
            s.instance = s.instance or c.instance
            if s.changed and not in_run(s, options.roles):
                s.pending, s.changed, s.notify = True, False, []
        planned.append(steps)
    return planned


def in_run(s: Step, roles: frozenset[str] | None) -> bool:
    """Whether this run applies the step: every step without --roles; else a step of a named role, or of a named
    instance of one (role[name]: what is planned for that instance, also its removal)."""
    return roles is None or s.role in roles or instance_key(s.role, s.instance) in roles


def notified_handlers(plays: list[Play], planned: list[list[Step]]) -> list[set[str]]:
    """The handlers each play runs: those its own steps notified, and those a step of another role notified
    (a new emulator restarts every instance of the daemon's role, each after its own builds)."""
    own = [{n for s in steps if s.changed for n in s.notify if n in r.handlers}
           for (r, _), steps in zip(plays, planned, strict=True)]
    foreign = {n for (r, _), steps in zip(plays, planned, strict=True) for s in steps if s.changed
               for n in s.notify if n not in r.handlers}
    return [mine | (foreign & set(r.handlers)) for (r, _), mine in zip(plays, own, strict=True)]


def run(sess: Session, plays: list[Play], check: bool, rep: Reporter, res: HostResult,
        options: Options | None = None, lock: host_lock.Ride | None = None) -> dict[str, Any]:
    """gather, plan, check or apply, handlers, verify; returns each play's facts (by play key) as they are at the
    end. `options.roles`: the roles (or role instances) this run applies; the others' changes are pending.
    `lock`: the host lock being taken beside the facts (nothing is planned before it is held)."""
    target = plays[0][1].target if plays else None
    managed = [f for r, c in plays for f in r.managed(c)]
    probes = {} if check else {play_key(r, c): r.start_probe(c, sess) for r, c in plays}
    facts, states, raw = gather(sess, plays, target, [f.path for f in managed], before=lock.prefix if lock else "")
    if lock is not None:
        held, read_under_it = lock.held(raw.get("host_lock"))
        if held.waited_for:
            rep.step(res, "lock", "host lock", "ok", f"waited {held.waited:.0f} s for the run of {held.waited_for}")
        if not read_under_it:   # (another run held the host meanwhile: what it changed is read now)
            facts, states, raw = gather(sess, plays, target, [f.path for f in managed])
    for r, c in plays:
        _info(res, r, c, facts)

    options = options or Options(check=check)
    planned = plan(plays, facts, states, options)
    steps = with_packages([s for each in planned for s in each])
    if check:
        _attach_diffs(sess, steps)
    _apply(sess, steps, check, rep, res)
    notified = notified_handlers(plays, planned)

    with ExitStack() as turn:
        restarts = [r.handlers[n].outcome is Outcome.RESTART for (r, _), names in zip(plays, notified, strict=True)
                    for n in names]
        if not check and any(restarts):
            waited = turn.enter_context(rolling.TURNS.turn())
            if waited >= 1:
                rep.step(res, "fleet", "restart turn", "ok", f"waited {waited:.0f} s for another host's restart "
                                                             f"(one host at a time)")
        # (a role outside the run is not verified: it was not asked to work, and was told pending)
        applied = [(r, c) for r, c in plays if options.roles is None or r.name in options.roles
                   or play_key(r, c) in options.roles]
        return _handle_and_verify(sess, plays, notified, facts, raw, probes, check, rep, res, applied)


def _info(res: HostResult, r: Role[Any, Any, Any], c: Context[Any, Any], facts: dict[str, Any]) -> None:
    """What a role tells of the target: a default instance's at the top of the result, another's under its
    role and name (instances -> role -> name)."""
    told = r.info(facts[play_key(r, c)])
    if c.instance is None:
        res.info.update(told)
    elif told:
        res.info.setdefault("instances", {}).setdefault(r.name, {})[c.instance] = told


def _handle_and_verify(sess: Session, plays: list[Play], notified: list[set[str]], facts: dict[str, Any],
                       raw: dict[str, str], probes: dict[str, Any], check: bool, rep: Reporter,
                       res: HostResult, applied: list[Play]) -> dict[str, Any]:
    restarted: set[str] = set()
    for (r, c), names in zip(plays, notified, strict=True):
        key = play_key(r, c)
        for name, handler in r.handlers.items():
            if name not in names:
                continue
            title = f"{name} (handler)"
            if check:
                rep.step(res, r.name, title, "would change", "", handler.outcome, c.instance)
                continue
            rc, out, err = sess.run(handler.script(c), notes=partial(rep.note, res, key))
            try:
                result = handler.result(c, rc, sections(out), err)
            except HandlerFailed as e:
                rep.step(res, r.name, title, "failed", e.detail, handler.outcome, c.instance)
                raise
            for extra_name, detail in result.extra_steps:
                rep.step(res, r.name, extra_name, "changed", detail, instance=c.instance)
            rep.step(res, r.name, title, "changed", result.detail, handler.outcome, c.instance)
            raw.update({prefix((r, c)) + k: v for k, v in result.sections.items()})
            facts[key] = r.parse(own_sections(raw, prefix((r, c))))
            restarted.add(key)

    if check:
        return facts
    for r, c in applied:
        key = play_key(r, c)
        verified = r.verify(c, facts[key], sess, probes.get(key), key in restarted)
        if verified is not None:
            _info(res, r, c, facts)
            rep.step(res, "verify", r.verify_title, "ok", verified, instance=c.instance)
    return facts


# one apt transaction that waits for other package managers (install-packages.sh)
INSTALL = (Path(__file__).parent / "install-packages.sh").read_text()


def with_packages(steps: list[Step]) -> list[Step]:
    """Every role's missing packages in one apt transaction (one `apt-get update` first), placed where the first
    of them was planned; the roles' own steps keep their scripts, which run after it."""
    wanted = [s for s in steps if s.changed and s.packages]
    if not wanted:
        return steps
    names = list(dict.fromkeys(p for s in wanted for p in s.packages))
    sources = "".join(dict.fromkeys(s.apt_source for s in wanted if s.apt_source))
    script = sources + "set -- " + command(*names) + "\n" + INSTALL
    first = steps.index(wanted[0])
    install = Step("packages", "distribution packages", True,
                   f"install {' '.join(names)} (one apt transaction; waits for another apt to finish)",
                   script=script, tells=True, packages=names)
    return steps[:first] + [install] + steps[first:]


def _attach_diffs(sess: Session, steps: list[Step]) -> None:
    """Check mode: the host's current text of every (non-secret) file whose content would change, as diffs."""
    files = [s.file for s in steps if s.changed and s.file is not None]
    readable = [f for f in files if not f.secret]
    current: dict[str, str] = {}
    if readable:
        # sections are numbered: a path is never printed back as a marker (nor run, whatever it holds)
        script = "".join(f"echo @@f{i}; base64 -w0 {quote(f.path)} 2>/dev/null; echo\n" for i, f in enumerate(readable))
        rc, out, _ = sess.run(script)
        got = sections(out)
        current = {f.path: base64.b64decode(got[f"f{i}"]).decode(errors="replace")
                   for i, f in enumerate(readable) if got.get(f"f{i}")}
    for s in steps:
        if s.changed and s.file is not None:
            s.diff = unified_diff(s.file, current.get(s.file.path))


def _report(rep: Reporter, res: HostResult, s: Step, status: str, detail: str | None = None) -> None:
    """One step as it went; a step outside this run's roles as pending, whatever it would have done."""
    rep.step(res, s.role, s.name, "pending" if s.pending else status, s.detail if detail is None else detail,
             s.outcome, s.instance)


def _apply(sess: Session, steps: list[Step], check: bool, rep: Reporter, res: HostResult) -> None:
    """Report or apply the steps in order. Consecutive scripts run as one batch (one round trip); an upload runs
    on its own channel, started at once so that it overlaps the rest."""
    if check:
        _show(steps, rep, res)
        return
    uploads = _start_uploads(sess, steps, rep, res)
    pending: list[Step] = []
    for s in steps:
        if s.changed and s.upload:
            _run_batch(sess, pending, rep, res)
            pending.clear()
            rc, out, err = uploads[id(s)]()
            if rc != 0:
                _report(rep, res, s, "failed", (err or out).strip()[-400:])
                raise RemoteError(f"{s.role}: {s.name} failed; the steps before it were applied, re-run provision "
                                  f"after fixing the cause")
            _report(rep, res, s, "changed")
        else:
            pending.append(s)
    _run_batch(sess, pending, rep, res)


def _show(steps: list[Step], rep: Reporter, res: HostResult) -> None:
    """Check mode: each step as it would go, with the diff of a file or the commands of a script."""
    for s in steps:
        if not s.changed:
            _report(rep, res, s, "ok")
            continue
        _report(rep, res, s, "would change")
        if s.diff:
            rep.text(s.diff.rstrip("\n"))
        elif s.script and s.file is None and not s.upload and not s.sensitive:
            # (a script that writes a file's content is never shown: the content may be a key)
            rep.text("  $ " + s.script.strip().replace("\n", "\n  $ "))


RunResult = tuple[int, str, str]


def _start_uploads(sess: Session, steps: list[Step], rep: Reporter,
                   res: HostResult) -> dict[int, Callable[[], RunResult]]:
    """Uploads (an image archive piped into `docker load`) take seconds over a slow link: each starts at once on
    its own channel, unless a package install comes before it (that may be what it needs: Docker itself), in
    which case it starts when its turn comes, and shows its progress. Each gives a function that returns its
    (rc, stdout, stderr)."""
    pool = ThreadPoolExecutor(max_workers=2)
    out: dict[int, Callable[[], RunResult]] = {}
    waiting = False
    for s in steps:
        waiting = waiting or (s.changed and bool(s.packages))
        if s.changed and s.upload:
            tick = rep.transfer(res, Path(s.upload).name, upload_size(s.upload))
            run = partial(sess.run, s.script, s.upload, progress=tick)
            out[id(s)] = run if waiting else pool.submit(run).result
    pool.shutdown(wait=False)
    return out


def _run_batch(sess: Session, steps: list[Step], rep: Reporter, res: HostResult) -> None:
    """The scripts among `steps` in one remote command, then every step reported in order; the first failure
    stops there."""
    scripts = [s for s in steps if s.changed and s.script]
    failed_at, output, told = None, "", {}
    if scripts:
        rc, out, err = sess.run(batch_script(scripts), notes=partial(rep.note, res, scripts[0].role))
        told = sections(out)
        failed_at = next((i for i in range(len(scripts)) if f"failed{i}" in told), None)
        output = told.get(f"failed{failed_at}", "") if failed_at is not None else ""
        if rc != 0 and failed_at is None:
            failed_at, output = len(scripts) - 1, err or out
    for s in steps:
        if not s.changed:
            _report(rep, res, s, "ok")
            continue
        i = next((k for k, x in enumerate(scripts) if x is s), None)
        if i is not None and i == failed_at:
            _report(rep, res, s, "failed", output.strip()[-400:])
            raise RemoteError(f"{s.role}: {s.name} failed; the steps before it were applied, re-run provision after "
                              f"fixing the cause")
        said = told.get(f"told{i}", "") if i is not None else ""
        _report(rep, res, s, "changed", f"{s.detail}; {said}" if said else s.detail)


def batch_script(steps: list[Step]) -> str:
    """Run steps' scripts in order; stop at the first failure and print its output under @@failedN."""
    # Each step runs in its own `sh -e` (a subshell tested by `||` would silently ignore `set -e`); fd 3 stays
    # the command's stderr, for the notes a long step gives as it goes (install-packages.sh).
    out = 'exec 3>&2\nT=$(mktemp)\n'
    for i, st in enumerate(steps):
        out += (f"sh -e > \"$T\" 2>&1 <<'BKOPS_STEP_{i}'\n{st.script.strip()}\nBKOPS_STEP_{i}\n"
                f"[ $? -eq 0 ] || {{ echo @@failed{i}; cat \"$T\"; rm -f \"$T\"; exit 1; }}\n"
                + (f"echo @@told{i}; sed -n 's/^bkops-told: //p' \"$T\"\n" if st.tells else ""))
    return out + 'rm -f "$T"\n'
