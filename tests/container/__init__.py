"""Containers built from the repository and run with podman (docs/container.md)."""
