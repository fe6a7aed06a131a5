"""`renlian migrate --to URL`: copy an SQLite store into an empty PostgreSQL database, all or nothing.

Everything is copied in one PostgreSQL transaction and counted before it commits: a failure at any
row (a value PostgreSQL cannot hold, a lost connection, a count that does not match) rolls the
whole copy back, leaving the target as empty as it was. The group change stamps are not copied:
the faces trigger gives every copied group a new one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from renlian.store.postgres import LOCK_NAMESPACE, MIGRATION_LOCK, PostgresStore
from renlian.store.sqlite import SQLiteStore

# Each table's columns, in the order the copy fills the tables.
COLUMNS = {
    "apps": "app_id, name, api_key, secret_key, brain_all_scope, qps_limit, daily_limit, total_limit, "
    "closed, created_at",
    "tokens": "token_sha256, app_id, kind, expires_at",
    "usage": "app_id, day, count",
    "face_groups": "id, app_id, group_id",
    "users": "id, app_id, group_id, uid, user_info",
    "faces": "face_id, app_id, group_id, uid, image_sha256, model, embedding, created_at",
    "crops": "app_id, image_sha256, jpeg",
}
# Identity columns whose sequences must continue after the copied ids.
IDENTITIES = {"face_groups": "id", "users": "id", "faces": "face_id"}


class MigrateError(Exception):
    """The copy was refused or did not add up; nothing was written."""


def copy_to_postgres(source: Path, url: str) -> dict[str, int]:
    """Copy the SQLite store at `source` into the database at `url`; the rows copied per table."""
    sqlite_store = SQLiteStore(source)
    try:
        target = PostgresStore(url, pool_size=1)
        try:
            return target.write(lambda db: _copy(sqlite_store.reader(), db))
        finally:
            target.close()
    finally:
        sqlite_store.close()


def _copy(source: sqlite3.Connection, db: psycopg.Connection[Any]) -> dict[str, int]:
    # The migration lock: a node starting, or a second migrate, waits until this one commits.
    db.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATION_LOCK))
    held = [table for table in COLUMNS if db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone()]
    if held:
        raise MigrateError(f"the target database is not empty (table {held[0]} has rows)")
    counts: dict[str, int] = {}
    for table, columns in COLUMNS.items():
        with db.cursor() as cursor, cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in source.execute(f"SELECT {columns} FROM {table}"):
                copy.write_row(row)
        (expected,) = source.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        (copied,) = db.execute(f"SELECT COUNT(*) FROM {table}").fetchone() or (0,)
        if copied != expected:
            raise MigrateError(f"table {table}: {expected} rows in SQLite, {copied} copied")
        counts[table] = copied
    for table, column in IDENTITIES.items():
        db.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', '{column}'), "
            f"COALESCE(MAX({column}), 0) + 1, false) FROM {table}"
        )
    return counts
