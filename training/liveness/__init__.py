"""Passive liveness scorer trained on NUAA."""
