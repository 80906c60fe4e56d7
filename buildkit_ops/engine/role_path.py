"""Where roles come from, and in which order they run, the way Ansible's roles path works.

The built-in roles are roles/ at the top of this repository (inside the package once installed). An operator
adds roles of their own in a roles/ folder beside their inventory: each joins the order after the role it
names (`after = "buildkitd"`), or at the end. A templates/ folder beside the inventory overrides a template
of any role by its file name (it is still rendered through the escaping of its file type)."""
from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from buildkit_ops.engine.contract import Role
from buildkit_ops.errors import BkopsError

BUILTIN = Path(importlib.import_module("buildkit_ops.roles").__path__[0])
# The built-in roles, in the order their changes are applied. Build hosts: the firewall lets SSH in before it
# is enabled; buildkitd needs the engine, and detects the emulators when it starts; its instances (the host's
# daemons: the fleet's and each tenant's), and the CI issuer, come up before the gateway routes to them.
# Clients: a CI runner's folder, or the failover proxy the builder's nodes point at, then the builder.
ORDER = {"host": ["engine", "firewall", "vpn", "emulation", "buildkitd", "ci_issuer", "gateway", "prune",
                  "connections"],
         "client": ["ci_runner", "vpn_client", "failover_proxy", "buildx_builder"]}
NAME = re.compile(r"[a-z][a-z0-9_]{0,40}")


class RoleError(BkopsError):
    """An operator's role that cannot be used: which file, what is wrong, how to fix it."""
    code = 2


def load(inventory_dir: Path | None = None, targets: str = "host") -> list[Role[Any, Any, Any]]:
    """The roles for targets of this kind, in order: the built-in ones, and the operator's beside the
    inventory."""
    return list(_load(inventory_dir.resolve() if inventory_dir else None, targets))


def site_folder(inventory_dir: Path | None, name: str) -> Path | None:
    """The operator's roles/ or templates/ beside the inventory, if there is one. In a checkout of buildkit-ops
    (buildkit_ops/ beside the inventory) the roles/ there are the built-in ones, not the operator's, whichever
    copy of buildkit-ops runs; its templates/ is the operator's place for overrides, as anywhere."""
    if inventory_dir is None or not (inventory_dir / name).is_dir():
        return None
    folder = (inventory_dir / name).resolve()
    if name == "roles" and (folder == BUILTIN.resolve() or (inventory_dir / "buildkit_ops" / "engine").is_dir()):
        return None
    return folder


@lru_cache(maxsize=32)
def _load(inventory_dir: Path | None, targets: str) -> tuple[Role[Any, Any, Any], ...]:
    site_templates = site_folder(inventory_dir, "templates")
    roles = [_builtin(name).for_inventory(BUILTIN / name, site_templates) for name in ORDER[targets]]
    site = site_folder(inventory_dir, "roles")
    if site is None:
        return tuple(roles)
    builtin_names = {n for names in ORDER.values() for n in names}
    for folder in sorted(p for p in site.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        if not NAME.fullmatch(folder.name):
            raise RoleError(f"{folder}: {folder.name!r} is not a role name; use lower-case letters, digits and '_'")
        if folder.name in builtin_names:
            raise RoleError(f"{folder}: a built-in role is named {folder.name!r}; give yours another name (a "
                            f"template of the built-in one can be overridden in {site.parent / 'templates'})")
        role = _site(folder).for_inventory(folder, site_templates)
        if role.targets != targets:
            continue
        names = [r.name for r in roles]
        if role.after is not None and role.after not in names:
            raise RoleError(f"{folder / '__init__.py'}: after = {role.after!r} is not a role of {targets} targets; "
                            f"use one of: {', '.join(names)}")
        at = names.index(role.after) + 1 if role.after is not None else len(roles)
        roles.insert(at, role)
    return tuple(roles)


def _builtin(name: str) -> Role[Any, Any, Any]:
    role: Role[Any, Any, Any] = importlib.import_module(f"buildkit_ops.roles.{name}").ROLE
    return role


def _site(folder: Path) -> Role[Any, Any, Any]:
    """An operator's role, imported from its folder (its own modules import relatively, `from .x import y`)."""
    init = folder / "__init__.py"
    if not init.is_file():
        raise RoleError(f"{folder}: a role folder needs an __init__.py that sets ROLE (see docs/roles.md)")
    module_name = f"bkops_site_role_{folder.name}_{abs(hash(str(folder))):x}"
    spec = importlib.util.spec_from_file_location(module_name, init, submodule_search_locations=[str(folder)])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # an operator's code: say which file, never a traceback
        del sys.modules[module_name]
        raise RoleError(f"{init}: the role cannot be loaded: {type(e).__name__}: {e}") from None
    role = getattr(module, "ROLE", None)
    if not isinstance(role, Role):
        raise RoleError(f"{init}: it sets no ROLE (an instance of buildkit_ops.engine.contract.Role); see "
                        f"docs/roles.md")
    if role.name != folder.name:
        raise RoleError(f"{init}: ROLE.name is {role.name!r} but its folder is {folder.name!r}; make them equal")
    return role
