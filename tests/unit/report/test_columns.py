"""Tables never cut a value: in a pipe (or a terminal too narrow for Rich's table) they are plain aligned
columns with whole values, one line per row, whatever a value holds."""
from __future__ import annotations

import io

from buildkit_ops.report import columns


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


COLUMNS = ("host", "client", "image")
ROWS = [["build1", "a-client-with-a-rather-long-name", "registry.example.com:5000/team/" + "x" * 90 + ":1.0"],
        ["build2", "laptop", "reg/app:1"]]


def test_a_pipe_gets_whole_values_in_aligned_columns():
    out = io.StringIO()
    columns.print_table(COLUMNS, ROWS, out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["HOST", "CLIENT", "IMAGE"]
    assert lines[1].split() == ROWS[0] and lines[2].split() == ROWS[1]
    assert lines[1].index("a-client") == lines[2].index("laptop") == lines[0].index("CLIENT")   # aligned
    assert "…" not in out.getvalue()


def test_a_terminal_too_narrow_for_the_whole_values_gets_the_plain_columns():
    out = Tty()
    columns.print_table(COLUMNS, ROWS, out, width=80)
    assert ROWS[0][2] in out.getvalue() and "┃" not in out.getvalue()


def test_a_wide_terminal_gets_richs_table_with_whole_values():
    out = Tty()
    columns.print_table(COLUMNS, ROWS, out, width=300)
    assert "┃" in out.getvalue() and ROWS[0][2] in out.getvalue() and ROWS[0][1] in out.getvalue()


def test_a_hostile_value_stays_on_its_line_and_is_no_markup():
    out = io.StringIO()
    columns.print_table(("client", "image"), [["laptop", "evil\n[red]x[/red]\x1b[2J"]], out)
    assert out.getvalue().splitlines()[1].split() == ["laptop", "evil\\n[red]x[/red]\\x1b[2J"]
