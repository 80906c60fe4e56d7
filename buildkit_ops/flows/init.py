"""init: start a real deployment in a folder: its inventory.yml (every key documented, the build hosts and
clients filled in; inventory/documented.py), a known_hosts with each machine's SSH host key, checked against a
fingerprint the operator pinned or confirmed (never trusted silently), and a .gitignore that keeps the PKI out
of the repository. A file that is there already is kept as it is: a second run changes nothing it did not
create. Nothing is written until every machine's key is accepted."""
from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from buildkit_ops.engine import host_keys
from buildkit_ops.engine.local_files import atomic_write
from buildkit_ops.errors import BkopsError
from buildkit_ops.inventory import InventoryError, documented, loader, strict_yaml, values

GITIGNORE = "# the PKI (CA key, client keys): never in the repository; keep `bkops pki export` files instead\n.pki/\n"
Confirm = Callable[[str, list[host_keys.HostKey]], bool]


class InitError(BkopsError):
    code = 2


def pairs(option: str, given: list[str]) -> dict[str, str]:
    """NAME=VALUE options as a mapping (a name once)."""
    out: dict[str, str] = {}
    for g in given:
        name, sep, value = g.partition("=")
        if not sep or not name or not value:
            raise InitError(f"{option} {g!r}: write it as NAME=VALUE, e.g. {option} build1=203.0.113.7")
        if name in out:
            raise InitError(f"{option}: {name} is given twice")
        out[name] = value
    return out


def settings(given: list[str]) -> dict[str, Any]:
    """--set KEY=VALUE options (KEY dotted: buildkit.image, buildkit.gc.keep_storage; VALUE read as YAML) as the
    nested mapping of all.vars they make; the schema checks them when the inventory is loaded."""
    out: dict[str, Any] = {}
    for g in given:
        key, sep, text = g.partition("=")
        if not sep or not re.fullmatch(r"[a-z_]+(\.[a-z_]+){0,2}", key):
            raise InitError(f"--set {g!r}: write it as KEY=VALUE with a key of the inventory, e.g. --set "
                            f"buildkit.max_parallelism=8")
        try:
            value = strict_yaml.load(text) if text else ""
        except yaml.YAMLError:
            raise InitError(f"--set {key}: {text!r} is not a YAML value") from None
        node = out
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise InitError(f"--set {key}: {p} is given a value and keys both")
        node[last] = value
    return out


def _checked(option: str, machines: dict[str, str]) -> dict[str, str]:
    for name, address in machines.items():
        for kind, value in (("name", name), ("address", address)):
            try:
                values.kind(kind)(value)
            except values.BadValue as e:
                raise InitError(f"{option} {name}={address}: {e.problem}\n  fix: {e.fix}") from None
    return machines


def accepted_keys(machines: dict[str, str], port: int, pins: dict[str, str], confirm: Confirm,
                  scan: Callable[[str, int], list[host_keys.HostKey]] = host_keys.scan) -> list[host_keys.HostKey]:
    """Each machine's keys: the one whose fingerprint was pinned, or all it showed once the operator confirmed
    them; InitError (nothing written) for a pin that matches none, or keys not confirmed."""
    unknown = set(pins) - set(machines)
    if unknown:
        raise InitError(f"--fingerprint {sorted(unknown)[0]}: no --host or --client of that name")
    out: list[host_keys.HostKey] = []
    for name, address in machines.items():
        keys = scan(address, port)
        if name in pins:
            pin = pins[name] if pins[name].startswith("SHA256:") else f"SHA256:{pins[name]}"
            match = [k for k in keys if k.fingerprint == pin]
            if not match:
                shown = ", ".join(f"{k.kind} {k.fingerprint}" for k in keys)
                raise InitError(f"{name} ({address}) shows no key with fingerprint {pin} (it shows: {shown}); a "
                                f"machine that is not the one you meant, or a mistyped fingerprint: nothing was "
                                f"written")
            out += match
        elif confirm(name, keys):
            out += keys
        else:
            raise InitError(f"{name}'s host key was not accepted: nothing was written\n  fix: compare the "
                            f"fingerprint with the provider's console, then run again (or pin it with "
                            f"--fingerprint {name}=SHA256:...)")
    return out


def init(directory: Path, hosts: dict[str, str], clients: dict[str, str], ssh: dict[str, Any], port: int,
         pins: dict[str, str], confirm: Confirm,
         scan: Callable[[str, int], list[host_keys.HostKey]] = host_keys.scan) -> dict[str, Any]:
    if not hosts:
        raise InitError("no build host: give at least one --host NAME=ADDRESS")
    machines = {**_checked("--host", hosts), **_checked("--client", clients)}
    if len(machines) < len(hosts) + len(clients):
        raise InitError("a name is both a --host and a --client: give each machine a name of its own")
    inventory, known, ignore = directory / "inventory.yml", directory / "known_hosts", directory / ".gitignore"
    text = documented.render(hosts, clients, {**ssh, "known_hosts": "known_hosts"})
    try:   # (a value the schema refuses stops here, before any machine is asked or any file written)
        loader.parse(strict_yaml.load(text), str(inventory), directory.resolve())
    except (InventoryError, yaml.YAMLError) as e:
        raise InitError(f"the inventory would not be valid: {e}") from None
    keys = accepted_keys(machines, port, pins, confirm, scan) if not known.exists() else []
    files: dict[str, str] = {}
    makers: list[tuple[Path, Callable[[], str]]] = [
        (inventory, lambda: text),
        (known, lambda: "".join(k.line() + "\n" for k in keys)),
        (ignore, lambda: GITIGNORE)]
    for path, make in makers:
        if path.exists():
            files[path.name] = "kept"
        else:
            atomic_write(path, make().encode(), 0o644)
            files[path.name] = "written"
    return {"directory": str(directory), "files": files,
            "host_keys": {k.host: k.fingerprint for k in keys},
            "next": f"bkops provision --check -i {inventory}   # then: bkops provision -i {inventory}"}
