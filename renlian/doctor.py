"""`renlian doctor`: is this machine ready to serve? One actionable line per problem, nothing fetched.

Every check only reads: models are verified against their pinned checksums (never downloaded), the
store is opened read-only (never migrated), the data directory is probed with a temporary file.
With RENLIAN_DATABASE_URL, the database is connected to and its schema version read.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg

from renlian.models.cache import ModelCache, sha256_of
from renlian.models.registry import BUNDLED, MODELS
from renlian.settings import Settings
from renlian.store import postgres
from renlian.store.sqlite import MIGRATIONS

# Below this much free space the store may fail a write (216300) before anyone notices.
MIN_FREE_BYTES = 1024**3


def problems(settings: Settings) -> Iterator[str]:
    yield from _models(settings)
    yield from _data_dir(settings.data_dir)
    if settings.database_url:
        yield from _database(settings)
    else:
        yield from _store(settings.store_path())
    yield from _settings(settings)


def checks(settings: Settings) -> list[str]:
    """What was checked, for the report of a healthy machine."""
    return [
        f"{len(MODELS) + len(BUNDLED)} models verified in {settings.model_cache()} and the package",
        f"data directory {settings.data_dir} writable",
        _store_check(settings),
        f"{settings.inference_workers} inference workers x {settings.threads_per_worker} threads "
        f"on {os.cpu_count()} cores",
    ]


def _store_check(settings: Settings) -> str:
    if settings.database_url:
        return (
            f"database {settings.store_name()} reachable, schema {_database_version(settings.database_url)} "
            f"(this renlian's: {len(postgres.MIGRATIONS)})"
        )
    return f"store {settings.store_path()} readable (this renlian's schema: {len(MIGRATIONS)})"


def _database_version(url: str) -> int:
    with psycopg.connect(url, connect_timeout=5) as connection:
        return postgres.schema_version(connection)


def _database(settings: Settings) -> Iterator[str]:
    assert settings.database_url
    name = settings.store_name()
    try:
        version = _database_version(settings.database_url)
    except psycopg.Error as exc:
        # The driver's message names the host and the reason, never the password; masked anyway.
        password = urlsplit(settings.database_url).password
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        if password:
            reason = reason.replace(password, "***")
        yield f"database {name} cannot be reached ({reason}): check RENLIAN_DATABASE_URL and the server"
        return
    if version > len(postgres.MIGRATIONS):
        yield (
            f"database {name} has schema {version}, newer than renlian's {len(postgres.MIGRATIONS)}: "
            "upgrade renlian"
        )


def _models(settings: Settings) -> Iterator[str]:
    cache = ModelCache(settings.model_cache())
    for spec in MODELS.values():
        if not cache.path(spec).is_file():
            yield f"model {spec.name} is missing from {settings.model_cache()}: run `renlian models fetch`"
        elif not cache.is_valid(spec):
            yield (
                f"model {spec.name} in {cache.path(spec)} fails its checksum: "
                "delete it and run `renlian models fetch`"
            )
    for bundled in BUNDLED.values():
        if not bundled.path.is_file() or sha256_of(bundled.path) != bundled.sha256:
            yield f"bundled model {bundled.name} ({bundled.path}) is missing or altered: reinstall renlian"


def _data_dir(data_dir: Path) -> Iterator[str]:
    if not data_dir.exists():
        yield f"data directory {data_dir} does not exist: `renlian serve` creates it, or pass --data-dir"
        return
    try:
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".doctor-"):
            pass
    except OSError as exc:
        yield f"data directory {data_dir} is not writable ({exc.strerror}): fix its owner or permissions"
        return
    free = shutil.disk_usage(data_dir).free
    if free < MIN_FREE_BYTES:
        yield f"only {free / 1024**2:.0f} MiB free under {data_dir}: free space before the store fills it"
    if data_dir.stat().st_mode & 0o077:
        yield f"data directory {data_dir} is open to others: `chmod 700 {data_dir}` (it holds secret keys)"


def _store(path: Path) -> Iterator[str]:
    if not path.exists():
        yield f"no store at {path} yet: create an app with `renlian apps create NAME` (or start the server)"
        return
    try:
        connection = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=5)
        try:
            (version,) = connection.execute("PRAGMA user_version").fetchone()
            connection.execute("SELECT COUNT(*) FROM apps").fetchone()
        finally:
            connection.close()
    except sqlite3.Error as exc:
        yield f"store {path} cannot be read ({exc}): restore it from a `renlian backup`"
        return
    # An older schema is no problem: the next `renlian serve` migrates it.
    if version > len(MIGRATIONS):
        yield f"store {path} has schema {version}, newer than renlian's {len(MIGRATIONS)}: upgrade renlian"


def _settings(settings: Settings) -> Iterator[str]:
    cores = os.cpu_count() or 1
    threads = settings.inference_workers * settings.threads_per_worker
    if threads > cores:
        yield (
            f"RENLIAN_INFERENCE_WORKERS x RENLIAN_THREADS_PER_WORKER is {threads} on {cores} cores: "
            "concurrent requests will oversubscribe the CPU; keep the product at or below the cores"
        )
