"""The built-in roles of buildkit-ops, one concern each, in the shape of Ansible's roles/<name>/.

Build hosts: engine, firewall, emulation, buildkitd, prune, connections. Client machines: ci_runner,
failover_proxy, buildx_builder. Each folder holds facts.sh, __init__.py (ROLE), exports.py (the names others
may use) and templates/; the contract is buildkit_ops/engine/contract.py, the order buildkit_ops/engine/
role_path.py, and docs/roles.md says how to write one of your own (a roles/ folder beside your inventory).
"""
