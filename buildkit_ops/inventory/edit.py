"""Add or remove a client in inventory.yml as text, so the file's comments (its
documentation) survive. The result is parsed and validated before it replaces
the file (atomically); anything unexpected leaves the file untouched."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from buildkit_ops import inventory
from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.errors import BkopsError
from buildkit_ops.inventory import loader, strict_yaml


class EditError(BkopsError):
    pass


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _content(line: str) -> bool:
    s = line.strip()
    return bool(s) and not s.startswith("#")


def _hosts_block(lines: list[str]) -> tuple[int, int, int]:
    """(index of the clients' `hosts:` line, its indent, index after the block's last content line)."""
    ci = next((i for i, l in enumerate(lines) if re.match(r"^\s+clients:\s*(#.*)?$", l)), None)
    if ci is None:
        raise EditError("no `clients:` group under all.children; add `clients:` with `hosts:` first")
    c_ind = _indent(lines[ci])
    hi = None
    end = len(lines)
    for j in range(ci + 1, len(lines)):
        if _content(lines[j]) and _indent(lines[j]) <= c_ind:
            end = j
            break
        if re.match(r"^\s+hosts:\s*(\{\}\s*)?(#.*)?$", lines[j]) and _indent(lines[j]) > c_ind:
            hi = j
    if hi is None:
        lines.insert(ci + 1, " " * (c_ind + 2) + "hosts:")
        return _hosts_block(lines)
    lines[hi] = re.sub(r"hosts:\s*\{\}", "hosts:", lines[hi])
    h_ind = _indent(lines[hi])
    last = hi
    for j in range(hi + 1, end):
        if _content(lines[j]):
            if _indent(lines[j]) <= h_ind:
                break
            last = j
    return hi, h_ind, last + 1


def add_client(path: Path, name: str, values: dict[str, Any], write: bool = True) -> inventory.Inventory:
    text = path.read_text()
    lines = text.split("\n")
    hi, h_ind, after = _hosts_block(lines)
    entry_ind = next((_indent(l) for l in lines[hi + 1:after] if _content(l)), h_ind + 2)
    new = [" " * entry_ind + f"{name}:"]
    for k, v in values.items():
        new.append(" " * (entry_ind + 2) + f"{k}: " + _scalar(v))
    lines[after:after] = new
    return _replace(path, "\n".join(lines), lambda inv: name in inv.clients and all(
        getattr(inv.clients[name], k) == v for k, v in values.items() if k in ("address", "connection")), write)


def _client_block(lines: list[str], name: str) -> tuple[int, int]:
    """(index of the client's `NAME:` line, index after its block)."""
    hi, h_ind, after = _hosts_block(lines)
    start = next((j for j in range(hi + 1, after) if re.fullmatch(rf"\s+{re.escape(name)}:\s*(\{{\}})?\s*(#.*)?",
                                                                     lines[j])), None)
    if start is None:
        raise EditError(f"client {name} not found under all.children.clients.hosts")
    ind = _indent(lines[start])
    stop = start + 1
    while stop < len(lines) and (not lines[stop].strip() or _indent(lines[stop]) > ind):
        stop += 1
    return start, stop


def set_client_value(path: Path, name: str, key: str, value: Any, write: bool = True) -> inventory.Inventory:
    """Set one key of a client (its `address` when it moved, its `home` when pinned): the key's line is
    replaced, or added after the client's `address:` line."""
    lines = path.read_text().split("\n")
    start, stop = _client_block(lines, name)
    line = next((j for j in range(start + 1, stop) if re.fullmatch(rf"\s+{re.escape(key)}:.*", lines[j])), None)
    if line is None:
        anchor = next((j for j in range(start + 1, stop) if re.fullmatch(r"\s+address:.*", lines[j])), None)
        if anchor is None:
            raise EditError(f"could not find the `address:` line of client {name} in {path}; edit it by hand")
        lines.insert(anchor + 1, lines[anchor][:_indent(lines[anchor])] + f"{key}: " + _scalar(value))
    else:
        lines[line] = lines[line][:_indent(lines[line])] + f"{key}: " + _scalar(value)
    return _replace(path, "\n".join(lines), lambda inv: inv.clients.get(name) is not None
                    and getattr(inv.clients[name], key) == value, write)


def _scalar(v: Any) -> str:
    """A YAML flow scalar for one value (the serializer quotes whatever needs it)."""
    return yaml.safe_dump(v, default_flow_style=True).strip().removesuffix("\n...").removesuffix("...").strip()


def remove_client(path: Path, name: str, write: bool = True) -> inventory.Inventory:
    lines = path.read_text().split("\n")
    start, stop = _client_block(lines, name)
    while stop > start + 1 and not lines[stop - 1].strip():
        stop -= 1
    del lines[start:stop]
    return _replace(path, "\n".join(lines), lambda inv: name not in inv.clients, write)


def _replace(path: Path, text: str, ok: Callable[[inventory.Inventory], bool], write: bool) -> inventory.Inventory:
    try:
        inv = loader.parse(strict_yaml.load(text), str(path), path.resolve().parent)
    except (inventory.InventoryError, yaml.YAMLError) as e:
        raise EditError(f"the edited inventory would not be valid, so {path} was left as it was: {e}") from None
    if not ok(inv):
        raise EditError(f"could not edit {path} safely (unusual layout); it was left as it was: edit it by hand")
    if write:
        atomic_write(path, text.encode(), path.stat().st_mode & 0o777)
    return inv
