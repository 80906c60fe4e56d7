"""A table on stdout whose values are never cut. On a terminal wide enough for every whole value, Rich's
table; in a pipe, a log or a narrow terminal, plain aligned columns (as `kubectl get` prints them), one line
per row, so that `bkops builds | grep` and a CI log hold whole client names, addresses and images. Scripts
use `--json`."""
from __future__ import annotations

import shutil
import sys
from typing import TextIO

from rich.console import Console
from rich.table import Table

from buildkit_ops.report.results import safe, shown

GAP = 3   # spaces between plain columns


def _cell(value: str) -> str:
    """One line, whatever the value holds (control characters escaped, line breaks as \\n)."""
    if value.isprintable():   # (no control, bidi or line-break character: most values, at C speed)
        return value
    return safe(value).replace("\n", "\\n").replace("\t", "\\t")


def plain(columns: tuple[str, ...], rows: list[list[str]]) -> str:
    cells = [[c.upper() for c in columns], *[[_cell(v) for v in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    return "".join((" " * GAP).join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n" for r in cells)


def rich_width(columns: tuple[str, ...], rows: list[list[str]]) -> int:
    """What Rich's table needs to show every value whole: the widest value of each column, one space of padding
    each side, and a border between and around the columns."""
    widths = [max(len(_cell(v)) for v in (c, *(r[i] for r in rows))) for i, c in enumerate(columns)]
    return sum(widths) + 3 * len(columns) + 1


def print_table(columns: tuple[str, ...], rows: list[list[str]], out: TextIO | None = None,
                width: int | None = None) -> None:
    """`rows` hold raw values (from hosts and clients too): escaped here for whichever form is printed. `width`:
    the terminal's (asked of it when not given)."""
    out = out or sys.stdout
    width = width or shutil.get_terminal_size().columns
    if out.isatty() and rich_width(columns, rows) <= width:
        t = Table()
        for c in columns:
            t.add_column(c, no_wrap=True)
        for r in rows:
            t.add_row(*(shown(_cell(v)) for v in r))
        Console(file=out, highlight=False, emoji=False, width=width).print(t)
    else:
        out.write(plain(columns, rows))
