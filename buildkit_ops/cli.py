"""One command-line convention for every task: `-i/--inventory` where a task
reads the inventory, `invoke TASK --help` that prints the task's help even
when the task takes a positional argument, and errors as one clear line with
a non-zero exit."""
from __future__ import annotations

import functools
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from invoke.exceptions import Exit
from invoke.parser.parser import ParseMachine
from invoke.tasks import Task
from invoke.tasks import task as invoke_task

from buildkit_ops.engine import warm
from buildkit_ops.errors import BkopsError
from buildkit_ops.inventory import DEFAULT_INVENTORY

INVENTORY = "inventory"
INV_HELP = f"inventory file (default: {DEFAULT_INVENTORY})"


class BkopsTask(Task[Any]):
    """A task whose `inventory` argument is always `-i/--inventory`: no other argument takes `-i`."""

    def arg_opts(self, name: str, default: str, taken_names: set[str]) -> dict[str, Any]:
        if name == INVENTORY:
            opts = super().arg_opts(name, default, set(taken_names) | set(name))
            opts["names"] = [INVENTORY, "i"]
            return opts
        return super().arg_opts(name, default, set(taken_names) | {"i"})


def task(**kwargs: Any) -> Callable[[Callable[..., Any]], Task[Any]]:
    """invoke's @task(...), with BkopsTask."""
    decorate: Callable[[Callable[..., Any]], Task[Any]] = invoke_task(klass=BkopsTask, **kwargs)
    return decorate


# Invoke hands the next word to a task's missing positional argument before it looks for flags, so
# `invoke add-client --help` would add a client named "--help". A help flag is never a positional value:
# treat it as the per-task help Invoke already supports (`invoke provision --help`).
_handle = ParseMachine.handle


def _handle_help_first(self: ParseMachine, token: str) -> None:
    if (token in ("--help", "-h") and self.context is not None and token not in self.context.flags
            and self.context.missing_positional_args and self.initial is not None and token in self.initial.flags):
        self.initial.flags[token].value = self.context.name
        for arg in self.context.missing_positional_args:  # the task will not run: help is printed instead
            arg.value = ""
        return
    _handle(self, token)


def help_before_positional_arguments() -> None:
    """Make Invoke's parser read `TASK --help` as help whatever the task's positional arguments. Called by the
    two entry points that build a command line over our tasks: `bkops` (program.py) and the checkout's
    tasks.py (for `invoke`)."""
    ParseMachine.handle = _handle_help_first  # type: ignore[method-assign]


def cli_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A task's expected errors become one clear message on stderr and a non-zero exit (2: bad input)."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except BkopsError as e:
            print(f"error: {e}", file=sys.stderr)
            raise Exit(code=e.code) from None
        finally:
            warm.close_all()   # (connections opened ahead that no session took)
    return wrapper


PASSPHRASE_ENV = "BKOPS_PKI_PASSPHRASE"


def passphrase(confirm: bool) -> str:
    """The PKI export's passphrase: from BKOPS_PKI_PASSPHRASE, else typed at a terminal (never echoed, never
    printed), twice when it seals."""
    phrase = os.environ.get(PASSPHRASE_ENV)
    if not phrase:
        if not sys.stdin.isatty():
            fail(f"no passphrase: set {PASSPHRASE_ENV}, run it in a terminal to type one, or seal for age keys with "
                 f"--recipient", 2)
        phrase = getpass.getpass("passphrase: ")
        if confirm and getpass.getpass("passphrase again: ") != phrase:
            fail("the two passphrases differ: nothing was written", 2)
    # (sealing only: an export is opened with whatever it was sealed with)
    if len(phrase) < 12 and confirm:
        fail("a passphrase of fewer than 12 characters guards the CA key poorly: nothing was written\n  fix: "
             f"choose a longer one (typed, or in {PASSPHRASE_ENV}), or --recipient age1... keys", 2)
    return phrase


def fail(message: str, code: int = 1) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise Exit(code=code)
