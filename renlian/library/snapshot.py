"""The file that lets a restart skip rebuilding a group: its codes and ids, with checksums.

One `.meta` file per group beside its `.rows` file: a magic line, a JSON header, then raw arrays. The
header names the model, the group, the database's epoch and the app's change number the content
holds (renlian/store/writes.py), and a crc32 of every array and of every 8 MB of the rows. A file is
written whole to a temporary name and renamed, and deleted before its group's rows are first changed
in place; so a file that exists and passes every checksum describes the rows exactly as of its
number, and the changes logged since bring it up to date (index.py); anything else is rebuilt from
the store.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

MAGIC = b"renlian-index 1\n"


class SnapshotError(ValueError):
    """A snapshot that cannot be trusted: missing, stale, truncated or damaged."""


def write(path: Path, header: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
    listed = [
        {"name": name, "dtype": array.dtype.str, "shape": list(array.shape), "crc": _crc(array)}
        for name, array in arrays.items()
    ]
    text = json.dumps({**header, "arrays": listed}).encode()
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(MAGIC + struct.pack("<Q", len(text)) + text)
        for array in arrays.values():
            out.write(np.ascontiguousarray(array).data.cast("B"))
    os.replace(temporary, path)


def read_header(path: Path) -> dict[str, Any]:
    """The header alone (unchecked: read() checks it with the arrays); SnapshotError if unreadable."""
    try:
        with path.open("rb") as source:
            if source.read(len(MAGIC)) != MAGIC:
                raise SnapshotError("not a snapshot of this format")
            (length,) = struct.unpack("<Q", source.read(8))
            header: dict[str, Any] = json.loads(source.read(length))
            return header
    except (OSError, ValueError, struct.error) as exc:
        raise SnapshotError(f"unreadable: {exc}") from exc


def read(path: Path, mapped: str = "") -> tuple[dict[str, Any], dict[str, NDArray[Any]]]:
    """The header and the arrays, each checked against its crc32; SnapshotError otherwise.

    Arrays whose name starts with `mapped` (when given) are mapped copy-on-write rather than read:
    no copy at start-up, and changes in memory never reach the file.
    """
    try:
        with path.open("rb") as source:
            if source.read(len(MAGIC)) != MAGIC:
                raise SnapshotError("not a snapshot of this format")
            (length,) = struct.unpack("<Q", source.read(8))
            header: dict[str, Any] = json.loads(source.read(length))
            offset = len(MAGIC) + 8 + length
            size = os.fstat(source.fileno()).st_size
            arrays = {}
            for entry in header["arrays"]:
                dtype, shape = np.dtype(entry["dtype"]), tuple(entry["shape"])
                nbytes = dtype.itemsize * int(np.prod(shape))
                if offset + nbytes > size:
                    raise SnapshotError(f"{entry['name']} is truncated")
                if mapped and entry["name"].startswith(mapped) and nbytes:
                    array: NDArray[Any] = np.memmap(path, dtype, mode="c", offset=offset, shape=shape)
                else:
                    array = np.empty(shape, dtype)
                    source.seek(offset)
                    source.readinto(array.data.cast("B"))
                if _crc(array) != entry["crc"]:
                    raise SnapshotError(f"{entry['name']} fails its checksum")
                arrays[entry["name"]] = array
                offset += nbytes
    except FileNotFoundError as exc:
        raise SnapshotError("no snapshot") from exc
    except (OSError, ValueError, KeyError, TypeError, struct.error) as exc:
        if isinstance(exc, SnapshotError):
            raise
        raise SnapshotError(f"unreadable: {exc}") from exc
    return header, arrays


def _crc(array: NDArray[Any]) -> int:
    return zlib.crc32(np.ascontiguousarray(array).data.cast("B"))
