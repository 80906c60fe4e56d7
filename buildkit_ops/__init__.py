"""buildkit-ops: shared, mutual-TLS BuildKit servers for a team, provisioned over SSH.

The built-in roles are the package buildkit_ops.roles, and only that (one import name, one ROLE object each).
Installed, they are inside this package (pyproject.toml maps roles/ there); in a checkout they stay in roles/ at the
top of the repository, the layout of an Ansible project, and are registered here under their one name: no link is
needed, so a checkout without symlinks works."""
import importlib.util
import sys
from pathlib import Path

__version__ = "0.2.0"

_HERE = Path(__file__).resolve().parent
_CHECKOUT_ROLES = _HERE.parent / "roles" / "__init__.py"
if not (_HERE / "roles").is_dir() and _CHECKOUT_ROLES.is_file() and "buildkit_ops.roles" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("buildkit_ops.roles", _CHECKOUT_ROLES,
                                                   submodule_search_locations=[str(_CHECKOUT_ROLES.parent)])
    assert _spec is not None and _spec.loader is not None
    sys.modules["buildkit_ops.roles"] = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(sys.modules["buildkit_ops.roles"])
