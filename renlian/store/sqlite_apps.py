"""Apps, tokens and usage counters in the same SQLite file as the face library."""

from __future__ import annotations

import time
from typing import Any

from renlian.store.base import AppRecord
from renlian.store.sqlite import SQLiteStore

_COLUMNS = (
    "app_id, name, api_key, secret_key, brain_all_scope, qps_limit, daily_limit, total_limit, closed, "
    "created_at"
)

# An expired token answers 111 (expired) rather than 110 (invalid) for a day after it expires; then
# its row is purged, so the table holds live tokens and not every token ever issued.
EXPIRED_TOKEN_GRACE_SECONDS = 24 * 3600
# Each saved token purges at most this many rows, so no token request pays for a long backlog at
# once; each save adds one row, so a backlog still drains.
PURGE_BATCH = 100


class SQLiteAppStore:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def create_app(self, app: AppRecord) -> None:
        with self._store.transaction() as db:
            db.execute(f"INSERT INTO apps ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _row(app))

    def apps(self) -> list[AppRecord]:
        rows = self._store.read(f"SELECT {_COLUMNS} FROM apps ORDER BY created_at, app_id")
        return [_app(row) for row in rows]

    def app(self, app_id: str) -> AppRecord | None:
        row = self._store.read_one(f"SELECT {_COLUMNS} FROM apps WHERE app_id = ?", (app_id,))
        return _app(row) if row else None

    def app_by_key(self, api_key: str) -> AppRecord | None:
        row = self._store.read_one(f"SELECT {_COLUMNS} FROM apps WHERE api_key = ?", (api_key,))
        return _app(row) if row else None

    def update_app(self, app: AppRecord) -> None:
        with self._store.transaction() as db:
            (old_secret,) = db.execute(
                "SELECT secret_key FROM apps WHERE app_id = ?", (app.app_id,)
            ).fetchone()
            db.execute(
                "UPDATE apps SET name = ?, api_key = ?, secret_key = ?, brain_all_scope = ?, qps_limit = ?, "
                "daily_limit = ?, total_limit = ?, closed = ?, created_at = ? WHERE app_id = ?",
                (*_row(app)[1:], app.app_id),
            )
            if old_secret != app.secret_key:
                db.execute("DELETE FROM tokens WHERE app_id = ?", (app.app_id,))

    def delete_app(self, app_id: str) -> None:
        with self._store.transaction() as db:
            for table in ("apps", "tokens", "usage", "faces", "users", "crops"):
                db.execute(f"DELETE FROM {table} WHERE app_id = ?", (app_id,))

    def save_token(self, token_sha256: str, app_id: str, kind: str, expires_at: int) -> None:
        """Save an issued token's digest, and purge a batch of long-expired ones in the same
        transaction (tokens_by_expiry finds them)."""
        with self._store.transaction() as db:
            db.execute(
                "INSERT INTO tokens (token_sha256, app_id, kind, expires_at) VALUES (?, ?, ?, ?)",
                (token_sha256, app_id, kind, expires_at),
            )
            db.execute(
                "DELETE FROM tokens WHERE token_sha256 IN "
                "(SELECT token_sha256 FROM tokens WHERE expires_at < ? LIMIT ?)",
                (int(time.time()) - EXPIRED_TOKEN_GRACE_SECONDS, PURGE_BATCH),
            )

    def token(self, token_sha256: str, kind: str) -> tuple[str, int] | None:
        row = self._store.read_one(
            "SELECT app_id, expires_at FROM tokens WHERE token_sha256 = ? AND kind = ?",
            (token_sha256, kind),
        )
        return (row[0], int(row[1])) if row else None

    def add_usage(self, counts: dict[tuple[str, str], int], batch_id: str | None = None) -> None:
        """`batch_id` is not needed here: an SQLite commit that raises has not happened."""
        with self._store.transaction() as db:
            db.executemany(
                "INSERT INTO usage (app_id, day, count) VALUES (?, ?, ?) "
                "ON CONFLICT (app_id, day) DO UPDATE SET count = count + excluded.count",
                [(app_id, day, count) for (app_id, day), count in counts.items()],
            )

    def usage(self, app_id: str, day: str) -> tuple[int, int]:
        row = self._store.read_one(
            "SELECT COALESCE(SUM(CASE WHEN day = ? THEN count END), 0), COALESCE(SUM(count), 0) "
            "FROM usage WHERE app_id = ?",
            (day, app_id),
        )
        return int(row[0]), int(row[1])


def _row(app: AppRecord) -> tuple[object, ...]:
    return (
        app.app_id,
        app.name,
        app.api_key,
        app.secret_key,
        int(app.brain_all_scope),
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
