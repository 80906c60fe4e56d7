"""Add, change or remove a client (or remove a tenant) in inventory.yml with ruamel.yaml's round trip, which keeps
the file's comments (its documentation), key order, quoting and layout by design: only the client's own lines
change. The result
is parsed and validated before it replaces the file (atomically); anything unexpected leaves the file
untouched."""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError as RoundTripError

from buildkit_ops import inventory
from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.errors import BkopsError
from buildkit_ops.inventory import loader, strict_yaml


class EditError(BkopsError):
    pass


def _yaml() -> YAML:
    y = YAML()   # round trip
    y.preserve_quotes = True
    y.width = 4096                              # never folds a long line
    y.indent(mapping=2, sequence=4, offset=2)   # the documented inventory's own layout
    return y


def _load(path: Path, text: str) -> tuple[YAML, Any]:
    y = _yaml()
    try:
        return y, y.load(text)
    except RoundTripError as e:
        raise EditError(f"{path} is not YAML this tool can edit ({e}); fix it by hand first") from None


# Edits shown before they are made (write=False: a flow checks its edit before it changes anything), by file,
# edit and the file's content: the same edit made next takes the text already made and checked, if the file is
# still as it was. A round trip of a team's inventory costs more than the rest of add-client's local work.
_planned: dict[tuple[str, str, str], tuple[str, inventory.Inventory]] = {}


def _edit(path: Path, op: str, change: Callable[[Any], None], ok: Callable[[inventory.Inventory], bool],
          write: bool) -> inventory.Inventory:
    """Load with the round trip, change, dump, check the result (_replace); write it unless asked not to."""
    original = path.read_text()
    k = (str(path.resolve()), op, hashlib.sha256(original.encode()).hexdigest())
    if k in _planned:
        text, inv = _planned.pop(k) if write else _planned[k]
    else:
        y, data = _load(path, original)
        change(data)
        text = _dump(y, data)
        inv = _checked(path, text, ok)
        if not write:
            _planned[k] = (text, inv)
    if write:
        atomic_write(path, text.encode(), path.stat().st_mode & 0o777)
    return inv


def _dump(y: YAML, data: Any) -> str:
    out = io.StringIO()
    y.dump(data, out)
    return out.getvalue()


def _mapping(parent: Any, key: str, where: str) -> CommentedMap:
    """parent[key] as a block mapping, made if it is missing or empty (`hosts: {}`)."""
    if not isinstance(parent, dict):
        raise EditError(f"{where} is not a mapping; edit the inventory by hand")
    node = parent.get(key)
    if node is None or (isinstance(node, dict) and not node):
        node = CommentedMap()
        parent[key] = node
    if not isinstance(node, CommentedMap):
        raise EditError(f"{where}.{key} is not a mapping; edit the inventory by hand")
    node.fa.set_block_style()
    return node


def _clients(data: Any) -> CommentedMap:
    children = _mapping(_mapping(data, "all", "the document"), "children", "all")
    return _mapping(_mapping(children, "clients", "all.children"), "hosts", "all.children.clients")


def _client(data: Any, name: str) -> CommentedMap:
    hosts = _clients(data)
    if name not in hosts:
        raise EditError(f"client {name} not found under all.children.clients.hosts")
    return _mapping(hosts, name, "all.children.clients.hosts")


def add_client(path: Path, name: str, values: dict[str, Any], write: bool = True) -> inventory.Inventory:
    def change(data: Any) -> None:
        _clients(data)[name] = CommentedMap(values)
    return _edit(path, f"add_client {name} {sorted(values.items())!r}", change, lambda inv: name in inv.clients and all(
        getattr(inv.clients[name], k) == v for k, v in values.items() if k in ("address", "connection")), write)


def set_client_value(path: Path, name: str, key: str, value: Any, write: bool = True) -> inventory.Inventory:
    """Set one key of a client (its `address` when it moved, its `home` when pinned, its `tenant`): in place when
    it is there, else right after the client's `address:`; None takes the key away (its default)."""
    def change(data: Any) -> None:
        entry = _client(data, name)
        if value is None:
            entry.pop(key, None)
        elif key in entry:
            entry[key] = value
        else:
            keys = list(entry)
            entry.insert(keys.index("address") + 1 if "address" in keys else len(keys), key, value)
    return _edit(path, f"set_client_value {name} {key} {value!r}", change, lambda inv: inv.clients.get(name)
                 is not None and getattr(inv.clients[name], key) == value, write)


def remove_client(path: Path, name: str, write: bool = True) -> inventory.Inventory:
    def change(data: Any) -> None:
        hosts = _clients(data)
        if name not in hosts:
            raise EditError(f"client {name} not found under all.children.clients.hosts")
        del hosts[name]
    return _edit(path, f"remove_client {name}", change, lambda inv: name not in inv.clients, write)


def _remove_entry(key: str, name: str, what: str) -> Callable[[Any], None]:
    """The change that takes NAME out of all.vars.KEY (and the key itself when it was the last)."""
    def change(data: Any) -> None:
        allvars = _mapping(_mapping(data, "all", "the document"), "vars", "all")
        entries = allvars.get(key)
        if not isinstance(entries, dict) or name not in entries:
            raise EditError(f"{what} {name} not found under all.vars.{key}")
        del entries[name]
        if not entries:
            del allvars[key]
    return change


def remove_tenant(path: Path, name: str, write: bool = True) -> inventory.Inventory:
    """Take a tenant out of all.vars.tenants (and the key itself when it was the last)."""
    return _edit(path, f"remove_tenant {name}", _remove_entry("tenants", name, "tenant"),
                 lambda inv: name not in inv.tenants, write)


def remove_ci_trust(path: Path, name: str, write: bool = True) -> inventory.Inventory:
    """Take a CI trust out of all.vars.ci_trust (and the key itself when it was the last)."""
    return _edit(path, f"remove_ci_trust {name}", _remove_entry("ci_trust", name, "CI trust"),
                 lambda inv: name not in inv.ci_trust, write)


def record_tenant_slots(path: Path, slots: dict[str, int], write: bool = True) -> inventory.Inventory:
    """Write each tenant's step subnet slot into the inventory (all.vars.tenants.NAME.step_slot), with a comment:
    from then on, adding or removing another tenant cannot move it."""
    def change(data: Any) -> None:
        tenants = _mapping(_mapping(_mapping(data, "all", "the document"), "vars", "all"), "tenants", "all.vars")
        for name, slot in sorted(slots.items()):
            entry = _mapping(tenants, name, "all.vars.tenants")
            entry["step_slot"] = slot
            entry.yaml_add_eol_comment(f"10.11.{slot}.0/24, recorded by buildkit-ops: never change it", "step_slot")
    return _edit(path, f"record_tenant_slots {sorted(slots.items())!r}", change, lambda inv: all(
        inv.tenants[n].slot == s and inv.tenants[n].slot_recorded for n, s in slots.items()), write)


def _host_entry(group: Any, name: str) -> CommentedMap | None:
    """A build host's own mapping, wherever in the buildhosts group tree it is written."""
    if not isinstance(group, dict):
        return None
    hosts = group.get("hosts")
    if isinstance(hosts, dict) and name in hosts:
        return _mapping(hosts, name, "hosts")
    for child in (group.get("children") or {}).values() if isinstance(group.get("children"), dict) else ():
        found = _host_entry(child, name)
        if found is not None:
            return found
    return None


def record_vpn_addresses(path: Path, addresses: dict[str, str], write: bool = True) -> inventory.Inventory:
    """Write each machine's (build host's or client's) address in the VPN as its `vpn_address`, with a comment:
    from then on, adding or removing another machine cannot move it."""
    def change(data: Any) -> None:
        children = _mapping(_mapping(data, "all", "the document"), "children", "all")
        for name, address in sorted(addresses.items()):
            entry = _host_entry(children.get("buildhosts"), name)
            if entry is None:
                entry = _client(data, name)
            entry["vpn_address"] = address
            entry.yaml_add_eol_comment("recorded by buildkit-ops: never change it", "vpn_address")
    return _edit(path, f"record_vpn_addresses {sorted(addresses.items())!r}", change, lambda inv: all(
        (inv.hosts.get(n) or inv.clients[n]).vpn_address == a for n, a in addresses.items()), write)


def _checked(path: Path, text: str, ok: Callable[[inventory.Inventory], bool]) -> inventory.Inventory:
    """The edited inventory, parsed and validated, and the edit seen in it; else the file is left as it was."""
    try:
        inv = loader.parse(strict_yaml.load(text), str(path), path.resolve().parent)
    except (inventory.InventoryError, yaml.YAMLError) as e:
        raise EditError(f"the edited inventory would not be valid, so {path} was left as it was: {e}") from None
    if not ok(inv):
        raise EditError(f"could not edit {path} safely (unusual layout); it was left as it was: edit it by hand")
    return inv
