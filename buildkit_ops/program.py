"""The `bkops` command: Invoke's command line over the product's tasks, from any directory."""
from __future__ import annotations

import sys

from invoke.program import Program

from buildkit_ops import __version__
from buildkit_ops.cli import help_before_positional_arguments
from buildkit_ops.tasks import ns


def task_words(argv: list[str]) -> list[str]:
    """`bkops pki export FILE` is `bkops pki-export FILE` (Invoke's task names are one word)."""
    if len(argv) > 2 and argv[1] == "pki" and argv[2] in ("export", "import"):
        return [argv[0], f"pki-{argv[2]}", *argv[3:]]
    return argv


def main() -> None:
    help_before_positional_arguments()
    Program(namespace=ns, name="bkops", binary="bkops", version=__version__).run(task_words(sys.argv))
