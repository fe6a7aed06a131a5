"""Apps, tokens and usage counters in the same PostgreSQL database as the face library."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg

from renlian.store.base import AppRecord
from renlian.store.postgres import PostgresStore, _placeholders
from renlian.store.reads import APP_COLUMNS, USAGE, AppReads, app_row
from renlian.store.sqlite_apps import EXPIRED_TOKEN_GRACE_SECONDS, PURGE_BATCH

# How long a usage flush's id is remembered: far longer than any retry of the flush.
USAGE_BATCH_MEMORY_SECONDS = 24 * 3600


class PostgresAppStore(AppReads):
    _store: PostgresStore

    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def create_app(self, app: AppRecord) -> None:
        self._store.write(
            lambda db: db.execute(
                f"INSERT INTO apps ({APP_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                app_row(app),
            )
        )

    def update_app(self, app: AppRecord) -> None:
        def body(db: psycopg.Connection[Any]) -> None:
            # FOR UPDATE: a secret rotated on another node at the same moment revokes tokens too.
            (old_secret,) = db.execute(
                "SELECT secret_key FROM apps WHERE app_id = %s FOR UPDATE", (app.app_id,)
            ).fetchone() or (None,)
            db.execute(
                "UPDATE apps SET name = %s, api_key = %s, secret_key = %s, brain_all_scope = %s, "
                "qps_limit = %s, daily_limit = %s, total_limit = %s, closed = %s, created_at = %s "
                "WHERE app_id = %s",
                (*app_row(app)[1:], app.app_id),
            )
            if old_secret != app.secret_key:
                db.execute("DELETE FROM tokens WHERE app_id = %s", (app.app_id,))

        self._store.write(body)

    def delete_app(self, app_id: str) -> None:
        self._store.delete_app_library(app_id, ("apps", "tokens", "usage"))

    def purge_tokens(self) -> int:
        """Delete the token rows that expired over a day ago, a batch per transaction
        (tokens_by_expiry finds them; SKIP LOCKED leaves rows another node purges); how many went."""
        cutoff = int(time.time()) - EXPIRED_TOKEN_GRACE_SECONDS

        def body(db: psycopg.Connection[Any]) -> int:
            return db.execute(
                "DELETE FROM tokens WHERE token_sha256 IN (SELECT token_sha256 FROM tokens "
                "WHERE expires_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)",
                (cutoff, PURGE_BATCH),
            ).rowcount

        purged = 0
        while True:
            gone = self._store.write(body)
            purged += gone
            if gone < PURGE_BATCH:
                return purged

    def add_usage(self, counts: dict[tuple[str, str], int], batch_id: str | None = None) -> None:
        """Counted once per `batch_id`: a flush retried after a commit whose answer was lost (the
        connection dropped) finds its batch already there and adds nothing."""
        # Sorted, so two nodes adding to the same rows lock them in the same order (no deadlock).
        rows = [(app_id, day, count) for (app_id, day), count in sorted(counts.items())]

        def body(db: psycopg.Connection[Any]) -> None:
            if batch_id is not None:
                db.execute(
                    "DELETE FROM usage_batches WHERE applied_at < now() - make_interval(secs => %s)",
                    (USAGE_BATCH_MEMORY_SECONDS,),
                )
                if not db.execute(
                    "INSERT INTO usage_batches (batch_id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1",
                    (batch_id,),
                ).fetchone():
                    return
            with db.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO usage (app_id, day, count) VALUES (%s, %s, %s) "
                    "ON CONFLICT (app_id, day) DO UPDATE SET count = usage.count + excluded.count",
                    rows,
                )

        if rows:
            self._store.write(body)

    def lease_usage(self, app_id: str, day: str, size: Callable[[int, int], int]) -> int:
        """The app's row, locked until commit, is what serializes the leases of every node: under
        READ COMMITTED the sum read after the lock includes every lease committed before it. `size`
        sees the sum once before the lock too, so that refusing a client past its limit, at whatever
        rate it calls, takes no lock."""

        def used(db: psycopg.Connection[Any]) -> tuple[int, int]:
            used_day, used_total = db.execute(_placeholders(USAGE), (day, app_id)).fetchone() or (0, 0)
            return int(used_day), int(used_total)

        def body(db: psycopg.Connection[Any]) -> int:
            size(*used(db))
            db.execute("SELECT 1 FROM apps WHERE app_id = %s FOR UPDATE", (app_id,))
            granted = size(*used(db))
            db.execute(
                "INSERT INTO usage (app_id, day, count) VALUES (%s, %s, %s) "
                "ON CONFLICT (app_id, day) DO UPDATE SET count = usage.count + excluded.count",
                (app_id, day, granted),
            )
            return granted

        return self._store.write(body)
