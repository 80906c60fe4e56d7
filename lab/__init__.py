"""The local lab: real machines on this computer for running and testing buildkit-ops (see machines.py)."""
