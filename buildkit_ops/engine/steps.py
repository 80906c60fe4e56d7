"""The steps most roles plan: a managed file (compared by checksum, mode and owner), a systemd unit kept running,
distribution packages installed by the runner, an image pulled."""
from __future__ import annotations

from collections.abc import Callable

from buildkit_ops.engine.contract import Step
from buildkit_ops.engine.render import MISSING, File, FileState, fix_mode_script, write_file_script
from buildkit_ops.engine.shell import command, quote


def file_steps(role: str, files: list[File], states: dict[str, FileState], notify: list[str],
               name: Callable[[File], str] | None = None) -> list[Step]:
    """One step per managed file: ok when checksum, mode and owner match; else written atomically (new or other
    content) or fixed with chmod/chown (mode or owner only: the content never travels again)."""
    steps = []
    for f in files:
        title = name(f) if name else f.path
        st = states.get(f.path, MISSING)
        if st.matches(f):
            steps.append(Step(role, title, False))
        elif st.sha256 == f.sha256:
            steps.append(Step(role, title, True, f"mode {st.mode} {st.owner}", script=fix_mode_script(f),
                              notify=list(notify)))
        else:
            steps.append(Step(role, title, True, "new" if st is MISSING else "content",
                              script=write_file_script(f), notify=list(notify), file=f))
    return steps


def unit_steps(role: str, files: list[File], states: dict[str, FileState], unit: str, running: bool,
               title: str, ok_detail: str) -> list[Step]:
    """A systemd unit's files, then the unit enabled and running: (re)started when a file changed or it is not
    running (daemon-reload first)."""
    steps = file_steps(role, files, states, [], name=lambda f: f.path.rsplit("/", 1)[1])
    if running and not any(s.changed for s in steps):
        return steps + [Step(role, title, False, ok_detail)]
    return steps + [Step(role, title, True, "enable and (re)start",
                         script=f"systemctl daemon-reload\n{command('systemctl', 'enable', '-q', unit)}\n"
                                f"{command('systemctl', 'restart', unit)}\n")]


def package_step(role: str, title: str, missing: list[str], ok_detail: str = "installed", script: str = "",
                 apt_source: str = "") -> Step:
    """Distribution packages a role needs: ok when none is missing; else installed by the runner, in one apt
    transaction with every other role's (then `script`, if any)."""
    if not missing:
        return Step(role, title, False, ok_detail)
    return Step(role, title, True, f"install {' '.join(missing)}", script=script, packages=list(missing),
                apt_source=apt_source)


def pull_script(image: str, quiet: bool = False) -> str:
    """`docker pull` of an image, saying so as it starts: a pull can take minutes, and a `@@note` on fd 3 (the
    batch's own stderr, runner.batch_script) reaches the operator at once."""
    note = "{ echo " + quote(f"@@note pulling {image}") + " >&3; } 2>/dev/null || true\n"
    return note + command("docker", "pull", "-q", image) + (" >/dev/null" if quiet else "") + "\n"
