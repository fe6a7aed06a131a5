"""Usage counts in a fleet: a flush whose commit landed but whose answer was lost is tried again under
the same id and counted once; the counts stay counted by admissions until they are saved."""

from __future__ import annotations

from dataclasses import replace

import pytest

from renlian.auth.apps import new_app
from renlian.auth.quotas import Quotas, today
from renlian.errors import ErrorCode, FaceApiError
from renlian.store.postgres import PostgresStore
from renlian.store.postgres_apps import PostgresAppStore


class AnswerLost(PostgresAppStore):
    """The real store, whose first usage write commits and then loses its answer, as when the
    connection drops between COMMIT and its acknowledgement."""

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store)
        self.lost = 0

    def add_usage(self, counts: dict[tuple[str, str], int], batch_id: str | None = None) -> None:
        super().add_usage(counts, batch_id)
        if not self.lost:
            self.lost += 1
            raise FaceApiError(ErrorCode.DB_ERROR, "the connection was lost")


def test_a_retried_flush_is_counted_once(database_url: str) -> None:
    store = PostgresStore(database_url, pool_size=2)
    try:
        apps = AnswerLost(store)
        app = new_app("quota", brain_all_scope=True)
        apps.create_app(app)
        quotas = Quotas(apps, max_concurrent=4)
        limited = replace(app, daily_limit=100)
        for _ in range(3):
            quotas.admit(limited)
        with pytest.raises(FaceApiError):
            quotas.flush()
        quotas.admit(limited)  # counted while the first three wait to be saved again
        quotas.flush()  # the first three again, under their id: already there
        quotas.flush()  # then the fourth
        assert apps.usage(app.app_id, today()) == (4, 4)
    finally:
        store.close()
