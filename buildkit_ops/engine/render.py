"""Rendering files for a host so that no value can change their structure.

Validation at load is the first wall; this is the second, and it holds on its
own. Each kind of file has a Jinja environment whose `finalize` hook escapes
every `{{ expression }}` for that file's language, the way HTML templates
autoescape:

  toml     TOML values: strings as basic strings with every control character
           escaped, booleans, integers and lists of those. A quoted table key
           (`[registry.{{ name }}]`) is a TOML quoted key.
  compose  YAML values for docker-compose.yml: JSON strings (valid YAML flow
           scalars) with `$` doubled, so Compose interpolates nothing.
  shell    shell scripts: every value one quoted word (see shell.py).
  haproxy  HAProxy configuration: a value is one word of names, addresses and
           numbers (letters, digits, `.`, `_`, `:`, `-`, brackets); anything
           else (a space, `#`, a quote, a line break) is refused, since each
           word would start a new argument, comment or line.
  systemd  unit file values: `%` doubled (no specifiers); a control character
           cannot be written at all (a unit file has no escape for a newline in
           a plain value) and is refused. Command lines go through the
           `systemd_command` filter: every argument double-quoted with C escapes,
           `%` and `$` doubled.

A value that is neither a string, a number, a boolean nor a list of those is
refused: templates never format dicts or objects by accident. Template text
itself (keys, comments, table headers) is constant.

Also here: managed files (`File`), their atomic upload script and their
check-mode diff, shared by every role that writes files on a host.
"""
from __future__ import annotations

import base64
import difflib
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from buildkit_ops.engine.shell import command, quote


class RenderError(ValueError):
    """A value that cannot be written safely into a file of that kind."""


class Escaped(str):
    """Text already escaped for its target (a filter's output): finalize passes it through."""


# ------------------------------------------------------------------ escapers

def json_string(s: str) -> str:
    """A double-quoted string that is valid JSON, TOML (basic string) and YAML: every character outside
    printable ASCII escaped, DEL included (JSON leaves it raw; TOML and YAML refuse it raw), and a character
    outside the BMP as \\UXXXXXXXX, one escape (JSON's surrogate pair of \\u escapes is invalid TOML)."""
    out = json.dumps(s, ensure_ascii=True).replace("\x7f", "\\u007f")
    return re.sub(r"\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", _one_escape, out)


def _one_escape(m: re.Match[str]) -> str:
    """A surrogate pair (\\uD83D\\uDE00) as the one character it stands for (\\U0001F600)."""
    high, low = int(m.group(1), 16) - 0xD800, int(m.group(2), 16) - 0xDC00
    return "\\U%08x" % (0x10000 + (high << 10) + low)


def _data_value(v: Any, string: Callable[[str], str], what: str) -> str:
    """A scalar or list in a data language whose strings `string` writes (TOML and YAML flow share the rest)."""
    if isinstance(v, Escaped):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return string(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_data_value(x, string, what) for x in v) + "]"
    raise RenderError(f"cannot write a {type(v).__name__} into {what}: {v!r}")


def toml_value(v: Any) -> str:
    return _data_value(v, json_string, "TOML")


def toml_key(k: str) -> Escaped:
    """A TOML key: bare when it is plain, else a quoted key (so a key can never end the line or the table)."""
    return Escaped(k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json_string(k))


def compose_word(v: Any) -> Escaped:
    """A bare word in docker-compose.yml (a project, container or volume name): lower-case letters, digits, '_',
    '.' and '-' only, else refused (it can be neither quoted nor made to mean more)."""
    if not isinstance(v, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,127}", v):
        raise RenderError(f"{v!r} is not a plain name, which is all a docker-compose.yml name may be here")
    return Escaped(v)


def compose_value(v: Any) -> str:
    return _data_value(v, lambda s: json_string(s.replace("$", "$$")), "docker-compose.yml")


def _no_control(s: str) -> None:
    bad = next((c for c in s if not c.isprintable()), None)
    if bad is not None:
        raise RenderError(f"{s!r} holds the control character {bad!r}, which a systemd unit cannot carry")


def _scalar(v: Any, into: str) -> str:
    """A string or a number as text; anything else (a list, a mapping, a boolean) is refused: it has no one
    spelling in every file type."""
    if isinstance(v, bool) or not isinstance(v, (str, int)):
        raise RenderError(f"cannot write a {type(v).__name__} into {into}: {v!r}")
    return str(v)


def systemd_value(v: Any) -> str:
    """A plain unit file value (the rest of the line after `Key=`)."""
    if isinstance(v, Escaped):
        return v
    s = _scalar(v, "a systemd unit")
    _no_control(s)
    if s.endswith("\\"):
        raise RenderError(f"{s!r} ends in a backslash, which would join the next line of the unit to it")
    return s.replace("%", "%%")


def systemd_arg(s: str) -> str:
    """One argument of an Exec*= command line: as it is when it holds only plain characters, else
    double-quoted and C-escaped, with no specifiers and no variables."""
    if re.fullmatch(r"[A-Za-z0-9/_.:=,+@-]+", str(s)):
        return str(s)
    out = []
    for ch in str(s):
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "%":
            out.append("%%")
        elif ch == "$":
            out.append("$$")
        elif ord(ch) < 0x20 or ord(ch) == 0x7f:
            out.append(f"\\x{ord(ch):02x}")
        elif not ch.isprintable():  # e.g. U+2028, which some readers take for a line break
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xffff else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def systemd_command(words: list[str]) -> Escaped:
    return Escaped(" ".join(systemd_arg(w) for w in words))


def shell_value(v: Any) -> str:
    if isinstance(v, Escaped):
        return v
    return quote(_scalar(v, "a shell script"))


def haproxy_value(v: Any) -> str:
    if isinstance(v, Escaped):
        return v
    s = _scalar(v, "an HAProxy configuration")
    if not re.fullmatch(r"[A-Za-z0-9._:\[\]-]{1,253}", s):
        raise RenderError(f"{s!r} is not one plain word, which is all an HAProxy configuration value may be here")
    return s


FINALIZERS: dict[str, Callable[[Any], str]] = {"toml": toml_value, "compose": compose_value,
                                                "systemd": systemd_value, "shell": shell_value,
                                                "haproxy": haproxy_value}


def environment(kind: str, directory: Path) -> Environment:
    """The Jinja environment for templates of one kind (toml, compose, systemd, shell, haproxy) in a folder."""
    env = Environment(loader=FileSystemLoader(str(directory)), undefined=StrictUndefined,
                      keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                      finalize=FINALIZERS[kind], autoescape=False)
    env.filters["systemd_command"] = systemd_command
    env.filters["systemd_word"] = lambda s: Escaped(systemd_arg(str(s)))
    env.filters["toml_key"] = toml_key
    env.filters["compose_word"] = compose_word
    return env


def render(template: Path, kind: str, **values: Any) -> str:
    """Render the template file at `template` (a role's templates/NAME.j2) for a file of that kind."""
    return environment(kind, template.parent).get_template(template.name).render(**values)


def safe_dirname(name: str) -> str:
    """A directory name made from a value: the value itself when it is plain (letters, digits, '.', '_', ':',
    '-', no '..'), else a hash of it. A path never follows a value out of its parent directory."""
    if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", name) and ".." not in name:
        return name
    return "h-" + hashlib.sha256(name.encode()).hexdigest()[:16]


# ------------------------------------------------------------------ managed files

@dataclass
class File:
    path: str
    content: bytes
    mode: int = 0o644
    secret: bool = False
    owner: str | None = "root:root"     # None: whoever the session runs as (a client's files, the operator's)
    dir_mode: int | None = None         # the folder's mode, when the file's folder is its own (0700 for secrets)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


@dataclass(frozen=True)
class FileState:
    """A managed file as the host has it."""
    sha256: str
    mode: str          # octal, e.g. "600"
    owner: str         # user:group

    def matches(self, f: File) -> bool:
        return self.sha256 == f.sha256 and self.mode == f"{f.mode:o}" and f.owner in (None, self.owner)


MISSING = FileState("-", "-", "-")


def files_fact(paths: list[str]) -> str:
    """The facts snippet of managed files: `SHA256 MODE OWNER PATH` for each (`- - - PATH` when missing), from
    one `stat` and one `sha256sum` over all of them (a process per file would cost more than the rest of the
    facts). Managed paths hold no whitespace (the remote_path grammar and safe_dirname see to that)."""
    return (f"echo @@files\nset --\nfor f in {command(*paths)}; do\n"
            "  if [ -f \"$f\" ]; then set -- \"$@\" \"$f\"; else echo \"- - - $f\"; fi\ndone\n"
            "[ $# -eq 0 ] || { stat -c '%a %U:%G %n' -- \"$@\"; sha256sum -- \"$@\"; } | "
            "awk 'NF == 3 && $1 ~ /^[0-7]+$/ { m[$3] = $1 \" \" $2; next } { print $1, m[$2], $2 }'\n")


def parse_file_states(text: str) -> dict[str, FileState]:
    out = {}
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[0] != "-":
            out[parts[3]] = FileState(*parts[:3])
    return out


def write_file_script(f: File) -> str:
    """Atomic upload: decode into a temp file beside the target, set mode and owner, rename."""
    tmp = f"{f.path}.bkops-tmp"
    b64 = base64.b64encode(f.content).decode()
    lines = [b64[i:i + 76] for i in range(0, len(b64), 76)]
    folder = quote(str(Path(f.path).parent))
    # a folder of its own is made with its mode from the start (umask), its missing parents too
    mkdir = (f"(umask {0o777 & ~f.dir_mode:03o}; mkdir -p {folder})\nchmod {f.dir_mode:o} {folder}\n"
             if f.dir_mode is not None else f"mkdir -p {folder}\n")
    return (mkdir
            + f"(umask 077; base64 -d > {quote(tmp)} <<'BKOPS_EOF'\n" + "\n".join(lines) + "\nBKOPS_EOF\n)\n"
            + f"chmod {f.mode:o} {quote(tmp)}{_chown(f, tmp)} && mv -f {quote(tmp)} {quote(f.path)}\n")


def _chown(f: File, path: str) -> str:
    return f" && chown {f.owner} {quote(path)}" if f.owner else ""


def fix_mode_script(f: File) -> str:
    """The content is right, only mode or owner differ: fix those (nothing of the content travels)."""
    return f"chmod {f.mode:o} {quote(f.path)}{_chown(f, f.path)}\n"


def unified_diff(f: File, current: str | None) -> str:
    if f.secret:
        return f"--- {f.path}\n+++ {f.path}\n(secret: content not shown)\n"
    old = (current or "").splitlines(keepends=True)
    new = f.content.decode().splitlines(keepends=True)
    return "".join(difflib.unified_diff(old, new, f"{f.path} (host)" if current is not None else "/dev/null",
                                        f"{f.path} (wanted)"))
