"""The inventory: inventory.yml loaded, checked value by value, and returned as a typed model.

  loader.py            the file and its Ansible-style groups, merged and checked into the model
  schema.py            every key: its type, default and documentation (the one place a default is written)
  values.py            the grammar of each kind of value (addresses, images, paths, sizes, durations, ...)
  model.py             the typed model the rest of buildkit-ops reads (host.buildkit.port)
  buildkit_versions.py which BuildKit version knows which buildkitd.toml key
  edit.py              the edits add-client and remove-client make, comments kept
"""
from buildkit_ops.inventory import values
from buildkit_ops.inventory.loader import DEFAULT_INVENTORY, load
from buildkit_ops.inventory.model import (
    GC,
    BuildHost,
    BuildKit,
    Client,
    GCPolicy,
    Inventory,
    InventoryError,
    PruneSchedule,
    Registry,
    Tenant,
)

__all__ = ["values", "DEFAULT_INVENTORY", "GC", "BuildHost", "BuildKit", "Client", "GCPolicy", "Inventory",
           "InventoryError", "PruneSchedule", "Registry", "Tenant",
           "load"]
