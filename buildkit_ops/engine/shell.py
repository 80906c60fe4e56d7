"""The one way a value reaches a remote shell: quoted.

Every script buildkit-ops sends to a host or a client is built from constant
text plus values passed through `quote` (one value) or `command` (a whole
command line, every word quoted). Nothing from the inventory, the command line
or a host's answer is ever pasted into shell text any other way."""
from __future__ import annotations

import shlex


def quote(value: object) -> str:
    """One shell word, whatever the value holds (spaces, quotes, `;`, newlines)."""
    return shlex.quote(str(value))


def command(*words: object) -> str:
    """A command line whose every word is quoted: command("ufw", "allow", "from", addr)."""
    return " ".join(quote(w) for w in words)
