"""The runner: one host, the ordered roles, and nothing else. It names no role.

  gather   every role's facts.sh and the state of every managed file, in ONE remote command (run in
           parallel on the host), while each role's probe (if any) starts on its own channel;
  plan     each role's pure plan from its parsed facts: steps, ok or changed. A PlanError (known before any
           change) stops the host here, nothing changed;
  check    in check mode: the unified diff of every file whose content would change (secrets masked), the
           commands of the other steps, the handlers that would run; nothing is changed;
  apply    consecutive changes in one batch (one round trip), each step's outcome kept apart; an upload
           (an image archive) streams on its own;
  handlers once each, at the end, when a step notified them; each owns its protocol with the host;
  verify   each role proves its service works (after a handler ran, against the new one).
"""
from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any, Protocol

from buildkit_ops.engine.contract import Context, HandlerFailed, Role, Step
from buildkit_ops.engine.facts import facts_snippet, parallel, sections
from buildkit_ops.engine.render import FileState, files_fact, parse_file_states, unified_diff
from buildkit_ops.engine.shell import quote
from buildkit_ops.engine.ssh import RemoteError
from buildkit_ops.report.output import HostResult, Reporter


class Session(Protocol):
    def run(self, script: str, upload: str | None = None, timeout: float = 600) -> tuple[int, str, str]: ...


def gather(sess: Session, roles: list[Role], ctx: Context, paths: list[str],
           extra: Sequence[str] = ()) -> tuple[dict[str, Any], dict[str, FileState], dict[str, str]]:
    """(role name -> parsed facts, path -> file state, raw sections) in one remote command. `extra` snippets
    (a status report's own) ride along in the same command."""
    script = parallel([files_fact(paths), *(facts_snippet(r, ctx) for r in roles), *extra])
    expected = {r.sentinel for r in roles if r.sentinel}
    for attempt in (1, 2):
        rc, out, err = sess.run(script)
        if rc != 0:
            raise RemoteError(f"reading the host's state failed ({rc}): {err.strip()[-500:]}")
        got = sections(out)
        missing = sorted(expected - set(got))
        if not missing:
            break
        # a snippet that printed nothing at all did not run (a host too loaded to fork): read once more
        # rather than plan from facts that say "nothing is installed"
        if attempt == 2:
            raise RemoteError(f"reading the host's state failed: no answer for {', '.join(missing)}; re-run")
    return {r.name: r.parse(got) for r in roles}, parse_file_states(got.get("files", "")), got


def run_host(sess: Session, roles: list[Role], ctx: Context, check: bool, rep: Reporter, res: HostResult) -> None:
    managed = [f for r in roles for f in r.managed(ctx)]
    probes = {} if check else {r.name: r.start_probe(ctx, sess) for r in roles}
    facts, states, raw = gather(sess, roles, ctx, [f.path for f in managed])
    for r in roles:
        res.info.update(r.info(facts[r.name]))

    steps = [s for r in roles for s in r.plan(ctx, facts[r.name], states)]
    if check:
        _attach_diffs(sess, steps)
    notified = _apply(sess, steps, check, rep, res)

    restarted: set[str] = set()
    for r in roles:
        for name, handler in r.handlers.items():
            if name not in notified:
                continue
            title = f"{name} (handler)"
            if check:
                rep.step(res, r.name, title, "would change", "")
                continue
            rc, out, err = sess.run(handler.script(ctx))
            try:
                result = handler.result(ctx, rc, sections(out), err)
            except HandlerFailed as e:
                rep.step(res, r.name, title, "failed", e.detail)
                raise
            for extra_name, detail in result.extra_steps:
                rep.step(res, r.name, extra_name, "changed", detail)
            rep.step(res, r.name, title, "changed", result.detail)
            raw.update(result.sections)
            facts[r.name] = r.parse(raw)
            restarted.add(r.name)

    if check:
        return
    for r in roles:
        verified = r.verify(ctx, facts[r.name], sess, probes.get(r.name), r.name in restarted)
        if verified is not None:
            res.info.update(r.info(facts[r.name]))
            rep.step(res, "verify", r.verify_title, "ok", verified)


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


def _apply(sess: Session, steps: list[Step], check: bool, rep: Reporter, res: HostResult) -> set[str]:
    """Report or apply the steps in order; returns the handlers they notified."""
    notified: set[str] = set()
    batch: list[Step] = []

    def flush() -> None:
        if not batch:
            return
        if batch[0].upload:
            rc, out, err = sess.run(batch[0].script, upload=batch[0].upload)
            failed_at, output = (0, (err or out)) if rc else (None, "")
        else:
            rc, out, err = sess.run(batch_script(batch))
            got = sections(out)
            failed_at = next((i for i in range(len(batch)) if f"failed{i}" in got), None)
            output = got.get(f"failed{failed_at}", "") if failed_at is not None else ""
            if rc != 0 and failed_at is None:
                failed_at, output = len(batch) - 1, err or out
        for i, st in enumerate(batch):
            if failed_at is not None and i == failed_at:
                rep.step(res, st.role, st.name, "failed", output.strip()[-400:])
                raise RemoteError(f"{st.role}: {st.name} failed; the steps before it were applied, "
                                  f"re-run provision after fixing the cause")
            rep.step(res, st.role, st.name, "changed", st.detail)
        batch.clear()

    for s in steps:
        if not s.changed:
            flush()
            rep.step(res, s.role, s.name, "ok", s.detail)
            continue
        notified.update(s.notify)
        if check:
            rep.step(res, s.role, s.name, "would change", s.detail)
            if s.diff:
                rep.text(s.diff.rstrip("\n"))
            elif s.script and s.file is None and not s.upload:
                # (a script that writes a file's content is never shown: the content may be a key)
                rep.text("  $ " + s.script.strip().replace("\n", "\n  $ "))
            continue
        if s.upload:
            flush()
            batch.append(s)
            flush()
        elif s.script:
            batch.append(s)
        else:
            flush()
            rep.step(res, s.role, s.name, "changed", s.detail)
    flush()
    return notified


def batch_script(steps: list[Step]) -> str:
    """Run steps' scripts in order; stop at the first failure and print its output under @@failedN."""
    # Each step runs in its own `sh -e` (a subshell tested by `||` would silently ignore `set -e`).
    out = 'T=$(mktemp)\n'
    for i, st in enumerate(steps):
        out += (f"sh -e > \"$T\" 2>&1 <<'BKOPS_STEP_{i}'\n{st.script.strip()}\nBKOPS_STEP_{i}\n"
                f"[ $? -eq 0 ] || {{ echo @@failed{i}; cat \"$T\"; rm -f \"$T\"; exit 1; }}\n")
    return out + 'rm -f "$T"\n'
