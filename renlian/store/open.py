"""The one place that chooses the store: PostgreSQL when RENLIAN_DATABASE_URL is set, else SQLite."""

from __future__ import annotations

from renlian.settings import Settings
from renlian.store.base import AppStore, FaceStore


def open_store(settings: Settings) -> tuple[FaceStore, AppStore]:
    """The face store and the app store over it; close the face store when done (it closes both)."""
    if settings.database_url:
        from renlian.store.postgres import PostgresStore
        from renlian.store.postgres_apps import PostgresAppStore

        postgres = PostgresStore(
            settings.database_url,
            pool_size=settings.database_pool_size,
            timeout=max(1.0, settings.db_busy_timeout_seconds),
            statement_timeout=settings.db_statement_timeout_seconds,
            index_dir=settings.data_dir / "index",
        )
        return postgres, PostgresAppStore(postgres)
    from renlian.store.sqlite import SQLiteStore
    from renlian.store.sqlite_apps import SQLiteAppStore

    sqlite = SQLiteStore(settings.store_path(), busy_timeout=settings.db_busy_timeout_seconds)
    return sqlite, SQLiteAppStore(sqlite)
