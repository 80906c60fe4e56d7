"""buildkit-ops: shared, mutual-TLS BuildKit servers for a team, provisioned over SSH."""
__version__ = "0.2.0"
