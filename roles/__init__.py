"""The built-in roles of buildkit-ops, one concern each, in the shape of Ansible's roles/<name>/.

Build hosts: engine, firewall, vpn, emulation, buildkitd, ci_issuer, gateway, prune, connections. Client
machines: ci_runner, vpn_client, failover_proxy, buildx_builder. Each folder holds facts.sh, __init__.py (ROLE),
exports.py (the names others may use) and templates/; the contract is buildkit_ops/engine/contract.py, the
order buildkit_ops/engine/role_path.py, and docs/roles.md says how to write one of your own (a roles/ folder
beside your inventory).
"""

if __name__ != "buildkit_ops.roles":
    # imported as `roles` (this folder on sys.path): a second copy of every role, with ROLE objects of its own
    raise ImportError(f"the built-in roles are imported as buildkit_ops.roles, not as {__name__}")
