"""The `bkops` command: Invoke's command line over the product's tasks, from any directory."""
from __future__ import annotations

from invoke.program import Program

from buildkit_ops import __version__
from buildkit_ops.cli import help_before_positional_arguments
from buildkit_ops.tasks import ns


def main() -> None:
    help_before_positional_arguments()
    Program(namespace=ns, name="bkops", binary="bkops", version=__version__).run()
