"""The model registry: which file, from which pinned PyPI wheel, with which checksum and licence."""
