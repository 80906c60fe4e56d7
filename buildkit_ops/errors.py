"""The one kind of error a task turns into a message: what is wrong, where, and how to fix it, then an exit
status (2: bad input, 1: a machine or a step failed). Every module's own errors are of this kind, so the
command line needs to know none of them."""
from __future__ import annotations


class BkopsError(Exception):
    code = 1

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


class FlowError(BkopsError):
    """A flow stopped: what happened, what was (not) changed, and how to go on. `code` is the exit status."""
