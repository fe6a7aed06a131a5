"""Owner-only files: the data directory, the store and its backups hold secret keys and face crops.

Modes are set explicitly rather than left to the umask, which a service manager or a shell may have
set to anything.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

logger = logging.getLogger("renlian.store")

DIR_MODE = 0o700
FILE_MODE = 0o600
# Beside the main file SQLite keeps these two while a connection is open, and after a crash; they
# hold recent pages, secret keys included.
SIDE_FILES = ("-wal", "-shm")


def private_dir(path: Path) -> None:
    """Create `path` (and its parents) with the last one owner-only; an existing directory is left
    as it is, since the user chose it and may share it on purpose, but a warning says when group or
    others can reach into it."""
    try:
        path.mkdir(parents=True, mode=DIR_MODE)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            logger.warning(
                "data directory %s has mode %04o: group or others can reach the store's secret keys "
                "and face crops; `chmod 700 %s` unless they must",
                path,
                mode,
                path,
            )
        return
    path.chmod(DIR_MODE)


def private_file(path: Path) -> None:
    """Make sure the store file exists, owner-only, before SQLite opens it.

    SQLite gives the -wal and -shm files it creates the main file's mode, so they follow. A store
    left readable by an older renlian is narrowed to owner-only, with a warning: it is renlian's own
    file, and narrowing it takes nothing from its owner.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        for candidate in (path, *(path.with_name(path.name + suffix) for suffix in SIDE_FILES)):
            _narrow(candidate)
        return
    try:
        os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)


def create_private(path: Path) -> None:
    """Create `path` empty and owner-only; FileExistsError if anything is there (never overwrite a
    file the user may want, nor follow a link someone planted)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    try:
        os.fchmod(descriptor, FILE_MODE)
    finally:
        os.close(descriptor)


def _narrow(path: Path) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        path.chmod(mode & 0o700)
    except OSError as exc:
        logger.warning(
            "%s has mode %04o and could not be narrowed to owner-only: %s", path, mode, exc.strerror
        )
        return
    logger.warning("%s had mode %04o, readable beyond its owner; now %04o", path, mode, mode & 0o700)
