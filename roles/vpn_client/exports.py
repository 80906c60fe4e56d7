"""What others may use of the vpn_client role: its name (add-client runs it alone first: the client's key pair,
which the build hosts then take as a peer)."""
from __future__ import annotations

NAME = "vpn_client"
