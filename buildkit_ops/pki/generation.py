"""The PKI state's generation (`pki_dir/generation`): a counter that goes up with every change of the state
(a CA made, a certificate issued, one revoked). It travels with `pki-export` / `pki-import` like every file of
the state, and each host keeps the generation of the state that last provisioned it, so that two operators see
who is behind (`status`)."""
from __future__ import annotations

from pathlib import Path

from buildkit_ops.engine.local_files import atomic_write

FILE = "generation"


def current(pki_dir: Path) -> int:
    try:
        return int((pki_dir / FILE).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def bump(pki_dir: Path) -> int:
    """One more change of the state (the callers hold the PKI's own lock: certs._issuing, or a single flow)."""
    n = current(pki_dir) + 1
    atomic_write(pki_dir / FILE, f"{n}\n".encode(), 0o600)
    return n


def parse(text: str) -> int | None:
    """A host's record of it (None: none there, or not a number)."""
    text = text.strip()
    return int(text) if text.isdigit() else None
