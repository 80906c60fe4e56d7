"""What others may use of the firewall role: its parsed facts (our client rules, IPv6, active) and the rules of
others that open the BuildKit port (status reports both)."""
from __future__ import annotations

from buildkit_ops.roles.firewall import FirewallFacts, foreign_openings

__all__ = ["FirewallFacts", "foreign_openings"]
