"""Apps, tokens and usage counters in the same SQLite file as the face library."""

from __future__ import annotations

import time
from collections.abc import Callable

from renlian.store.base import AppRecord
from renlian.store.reads import APP_COLUMNS, USAGE, AppReads, app_row
from renlian.store.sqlite import SQLiteStore

# A token row (issued before tokens were MACs, auth/tokens.py) answers 111 (expired) rather than
# 110 (invalid) for at least a day after it expires; the start-up purge then removes it.
EXPIRED_TOKEN_GRACE_SECONDS = 24 * 3600
# Rows purged per transaction: a large backlog never holds the write lock for long at once.
PURGE_BATCH = 1000


class SQLiteAppStore(AppReads):
    _store: SQLiteStore

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def create_app(self, app: AppRecord) -> None:
        with self._store.transaction() as db:
            db.execute(
                f"INSERT INTO apps ({APP_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", app_row(app)
            )

    def update_app(self, app: AppRecord) -> None:
        with self._store.transaction() as db:
            (old_secret,) = db.execute(
                "SELECT secret_key FROM apps WHERE app_id = ?", (app.app_id,)
            ).fetchone()
            db.execute(
                "UPDATE apps SET name = ?, api_key = ?, secret_key = ?, brain_all_scope = ?, qps_limit = ?, "
                "daily_limit = ?, total_limit = ?, closed = ?, created_at = ? WHERE app_id = ?",
                (*app_row(app)[1:], app.app_id),
            )
            if old_secret != app.secret_key:
                db.execute("DELETE FROM tokens WHERE app_id = ?", (app.app_id,))

    def delete_app(self, app_id: str) -> None:
        self._store.delete_app_library(app_id, ("apps", "tokens", "usage"))

    def purge_tokens(self) -> int:
        """Delete the token rows that expired over a day ago, a batch per transaction
        (tokens_by_expiry finds them); how many went."""
        cutoff = int(time.time()) - EXPIRED_TOKEN_GRACE_SECONDS
        purged = 0
        while True:
            with self._store.transaction() as db:
                gone = db.execute(
                    "DELETE FROM tokens WHERE token_sha256 IN "
                    "(SELECT token_sha256 FROM tokens WHERE expires_at < ? LIMIT ?)",
                    (cutoff, PURGE_BATCH),
                ).rowcount
            purged += gone
            if gone < PURGE_BATCH:
                return purged

    def add_usage(self, counts: dict[tuple[str, str], int], batch_id: str | None = None) -> None:
        """`batch_id` is not needed here: an SQLite commit that raises has not happened."""
        with self._store.transaction() as db:
            db.executemany(
                "INSERT INTO usage (app_id, day, count) VALUES (?, ?, ?) "
                "ON CONFLICT (app_id, day) DO UPDATE SET count = count + excluded.count",
                [(app_id, day, count) for (app_id, day), count in counts.items()],
            )

    def lease_usage(self, app_id: str, day: str, size: Callable[[int, int], int]) -> int:
        """BEGIN IMMEDIATE takes the file's write lock first, so a lease never overlaps another, from
        this process or any other on the same file. `size` sees the counts once before, so that
        refusing a client past its limit, at whatever rate it calls, never takes the write lock."""
        size(*self.usage(app_id, day))
        with self._store.transaction() as db:
            used_day, used_total = db.execute(USAGE, (day, app_id)).fetchone()
            granted = size(int(used_day), int(used_total))
            db.execute(
                "INSERT INTO usage (app_id, day, count) VALUES (?, ?, ?) "
                "ON CONFLICT (app_id, day) DO UPDATE SET count = count + excluded.count",
                (app_id, day, granted),
            )
        return granted
