"""Offline admission engines; the registry is filled in by the simulator work (polgen scan)."""
