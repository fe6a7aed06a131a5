"""Apps, tokens and usage counters in the same PostgreSQL database as the face library."""

from __future__ import annotations

import time
from typing import Any

import psycopg

from renlian.store.base import AppRecord, FaceChanges
from renlian.store.postgres import PostgresStore, announce_changes
from renlian.store.sqlite_apps import EXPIRED_TOKEN_GRACE_SECONDS, PURGE_BATCH

# How long a usage flush's id is remembered: far longer than any retry of the flush.
USAGE_BATCH_MEMORY_SECONDS = 24 * 3600
_COLUMNS = (
    "app_id, name, api_key, secret_key, brain_all_scope, qps_limit, daily_limit, total_limit, closed, "
    "created_at"
)


class PostgresAppStore:
    def __init__(self, store: PostgresStore) -> None:
        self._store = store

    def create_app(self, app: AppRecord) -> None:
        self._store.write(
            lambda db: db.execute(
                f"INSERT INTO apps ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", _row(app)
            )
        )

    def apps(self) -> list[AppRecord]:
        rows = self._store.read(f"SELECT {_COLUMNS} FROM apps ORDER BY created_at, app_id")
        return [_app(row) for row in rows]

    def app(self, app_id: str) -> AppRecord | None:
        row = self._store.read_one(f"SELECT {_COLUMNS} FROM apps WHERE app_id = %s", (app_id,))
        return _app(row) if row else None

    def app_by_key(self, api_key: str) -> AppRecord | None:
        row = self._store.read_one(f"SELECT {_COLUMNS} FROM apps WHERE api_key = %s", (api_key,))
        return _app(row) if row else None

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
                (*_row(app)[1:], app.app_id),
            )
            if old_secret != app.secret_key:
                db.execute("DELETE FROM tokens WHERE app_id = %s", (app.app_id,))

        self._store.write(body)

    def delete_app(self, app_id: str) -> None:
        def body(db: psycopg.Connection[Any]) -> None:
            self._store.lock_app(db, app_id)
            removed = db.execute(
                "DELETE FROM faces WHERE app_id = %s RETURNING group_id, face_id", (app_id,)
            ).fetchall()
            # Announced like any removal, so that every node's index lets go of the faces.
            gone = [(app_id, group, face_id) for group, face_id in sorted(removed)]
            announce_changes(db, FaceChanges([], gone))
            for table in ("apps", "tokens", "usage", "users", "crops", "face_groups", "face_stamps"):
                db.execute(f"DELETE FROM {table} WHERE app_id = %s", (app_id,))

        self._store.write(body)

    def save_token(self, token_sha256: str, app_id: str, kind: str, expires_at: int) -> None:
        """Save an issued token's digest, and purge a batch of long-expired ones in the same
        transaction (tokens_by_expiry finds them; SKIP LOCKED leaves rows another node purges)."""

        def body(db: psycopg.Connection[Any]) -> None:
            db.execute(
                "INSERT INTO tokens (token_sha256, app_id, kind, expires_at) VALUES (%s, %s, %s, %s)",
                (token_sha256, app_id, kind, expires_at),
            )
            db.execute(
                "DELETE FROM tokens WHERE token_sha256 IN (SELECT token_sha256 FROM tokens "
                "WHERE expires_at < %s LIMIT %s FOR UPDATE SKIP LOCKED)",
                (int(time.time()) - EXPIRED_TOKEN_GRACE_SECONDS, PURGE_BATCH),
            )

        self._store.write(body)

    def token(self, token_sha256: str, kind: str) -> tuple[str, int] | None:
        row = self._store.read_one(
            "SELECT app_id, expires_at FROM tokens WHERE token_sha256 = %s AND kind = %s",
            (token_sha256, kind),
        )
        return (row[0], int(row[1])) if row else None

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

    def usage(self, app_id: str, day: str) -> tuple[int, int]:
        row = self._store.read_one(
            "SELECT COALESCE(SUM(CASE WHEN day = %s THEN count END), 0), COALESCE(SUM(count), 0) "
            "FROM usage WHERE app_id = %s",
            (day, app_id),
        )
        return int(row[0]), int(row[1])


def _row(app: AppRecord) -> tuple[object, ...]:
    return (
        app.app_id,
        app.name,
        app.api_key,
        app.secret_key,
        app.brain_all_scope,
        app.qps_limit,
        app.daily_limit,
        app.total_limit,
        ",".join(sorted(app.closed)),
        app.created_at,
    )


def _app(row: tuple[Any, ...]) -> AppRecord:
    (app_id, name, api_key, secret_key, scope, qps, daily, total, closed, created_at) = row
    return AppRecord(
        app_id=str(app_id),
        name=str(name),
        api_key=str(api_key),
        secret_key=str(secret_key),
        brain_all_scope=bool(scope),
        qps_limit=qps,
        daily_limit=daily,
        total_limit=total,
        closed=frozenset(filter(None, str(closed).split(","))),
        created_at=int(created_at),
    )
