"""Everything printed: steps and recaps as they happen, tables, JSON and Prometheus forms."""
