"""Quotas against the real stores: daily and total limits are never exceeded by nodes sharing one
database, whatever the interleaving of their leases and give-backs; admitting from a lease touches no
store; no store call holds the lock the event loop takes; and usage writes, counts and give-backs
alike, are applied once when a commit lands but its answer is lost."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from renlian.auth import quotas as quotas_module
from renlian.auth.apps import new_app
from renlian.auth.quotas import Quotas, today
from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import AppRecord, AppStore
from renlian.store.postgres import PostgresStore
from renlian.store.postgres_apps import PostgresAppStore
from renlian.store.sqlite import SQLiteStore
from renlian.store.sqlite_apps import SQLiteAppStore


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


@pytest.fixture
def postgres(database_url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(database_url, pool_size=4)
    yield store
    store.close()


@pytest.fixture(params=["sqlite", "postgres"])
def apps(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AppStore]:
    if request.param == "postgres":
        yield PostgresAppStore(request.getfixturevalue("postgres"))
        return
    store = SQLiteStore(tmp_path / "renlian.sqlite3")
    yield SQLiteAppStore(store)
    store.close()


def limited(apps: AppStore, daily: int | None = None, total: int | None = None) -> AppRecord:
    app = new_app("quota", brain_all_scope=True)
    apps.create_app(app)
    return replace(app, daily_limit=daily, total_limit=total)


def admitted(quotas: Quotas, app: AppRecord) -> ErrorCode | None:
    try:
        quotas.admit(app)
    except FaceApiError as refusal:
        return refusal.error
    return None


def test_a_retried_flush_is_counted_once(postgres: PostgresStore) -> None:
    apps = AnswerLost(postgres)
    app = limited(apps)  # no daily or total limit: counted in memory and flushed
    quotas = Quotas(apps, max_concurrent=4)
    for _ in range(3):
        quotas.admit(app)
    with pytest.raises(FaceApiError):
        quotas.flush()
    quotas.admit(app)  # counted while the first three wait to be saved again
    quotas.flush()  # the first three again, under their id: already there
    quotas.flush()  # then the fourth
    assert apps.usage(app.app_id, today()) == (4, 4)


def test_a_lease_given_back_is_subtracted_once(postgres: PostgresStore) -> None:
    apps = AnswerLost(postgres)
    app = limited(apps, total=20)
    quotas = Quotas(apps, max_concurrent=4)
    quotas.admit(app)
    assert apps.usage(app.app_id, today()) == (5, 5)  # a quarter of 20 leased, counted at once
    with pytest.raises(FaceApiError):
        quotas.flush()  # the 4 unused are subtracted, and the answer is lost
    assert apps.usage(app.app_id, today()) == (1, 1)
    assert [admitted(quotas, app) for _ in range(20)] == [None] * 19 + [ErrorCode.TOTAL_LIMIT]
    quotas.flush()  # the give-back again, under its id: already applied
    quotas.flush()
    assert apps.usage(app.app_id, today()) == (20, 20)


@pytest.mark.parametrize("limit", ["daily", "total"])
def test_two_nodes_never_admit_past_a_limit(apps: AppStore, limit: str) -> None:
    app = limited(apps, **{limit: 50})
    nodes = [Quotas(apps, max_concurrent=64), Quotas(apps, max_concurrent=64)]
    answers: list[ErrorCode | None] = []
    stop = threading.Event()

    def flusher() -> None:
        # Give-backs race the grants: every lease is handed back again and again mid-burst.
        while not stop.is_set():
            for node in nodes:
                node.flush()

    def client(number: int) -> None:
        for turn in range(25):
            answers.append(admitted(nodes[(number + turn) % 2], app))

    flushing = threading.Thread(target=flusher)
    clients = [threading.Thread(target=client, args=(number,)) for number in range(8)]
    flushing.start()
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    stop.set()
    flushing.join()
    refused = ErrorCode.DAILY_LIMIT if limit == "daily" else ErrorCode.TOTAL_LIMIT
    served = answers.count(None)
    assert served <= 50 and answers.count(refused) == 200 - served
    for node in nodes:
        node.flush()
    assert apps.usage(app.app_id, today()) == (served, served)  # every unused share came back
    # And none of it was lost: what is left is admitted, then no more.
    more = [admitted(nodes[turn % 2], app) for turn in range(60)]
    assert served + more.count(None) == 50 and more[-1] == refused


class Counting:
    """An app store that records each lease it grants."""

    def __init__(self, inner: AppStore) -> None:
        self.inner = inner
        self.leases: list[int] = []

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def lease_usage(self, app_id: str, day: str, size: Callable[[int, int], int]) -> int:
        granted = self.inner.lease_usage(app_id, day, size)
        self.leases.append(granted)
        return granted


def test_leases_are_small_near_the_limit_and_grow_with_demand(apps: AppStore) -> None:
    counting = Counting(apps)
    quotas = Quotas(counting, max_concurrent=4)  # type: ignore[arg-type]
    small = limited(apps, total=10)
    assert [admitted(quotas, small) for _ in range(11)] == [None] * 10 + [ErrorCode.TOTAL_LIMIT]
    # A quarter of what is left, at least one: the last requests go one by one.
    assert counting.leases == [2, 2, 1, 1, 1, 1, 1, 1]
    counting.leases.clear()
    large = limited(apps, daily=1_000_000)
    for _ in range(500):
        quotas.admit(large)
    assert counting.leases == [32] * 16  # admitting from a lease asks the store nothing
    quotas.flush()
    counting.leases.clear()
    for _ in range(500):
        quotas.admit(large)
    assert counting.leases == [500]  # the last second's demand


def test_a_node_that_dies_holding_a_lease_only_under_admits(apps: AppStore) -> None:
    app = limited(apps, total=20)
    dead, alive = Quotas(apps, max_concurrent=4), Quotas(apps, max_concurrent=4)
    dead.admit(app)  # leases 5, uses 1, and is never flushed
    answers = [admitted(alive, app) for _ in range(20)]
    assert answers == [None] * 15 + [ErrorCode.TOTAL_LIMIT] * 5
    assert apps.usage(app.app_id, today()) == (20, 20)


def test_changed_limits_and_a_new_day_hold_at_once(apps: AppStore, monkeypatch: pytest.MonkeyPatch) -> None:
    quotas = Quotas(apps, max_concurrent=4)
    app = limited(apps, total=100)
    quotas.admit(app)  # leases 25
    lowered = replace(app, total_limit=3)
    assert [admitted(quotas, lowered) for _ in range(3)] == [None, None, ErrorCode.TOTAL_LIMIT]
    daily = replace(app, total_limit=None, daily_limit=4)
    monkeypatch.setattr(quotas_module, "today", lambda: "2031-01-01")
    assert [admitted(quotas, daily) for _ in range(5)] == [None] * 4 + [ErrorCode.DAILY_LIMIT]
    monkeypatch.setattr(quotas_module, "today", lambda: "2031-01-02")
    assert [admitted(quotas, daily) for _ in range(5)] == [None] * 4 + [ErrorCode.DAILY_LIMIT]
    quotas.flush()
    assert apps.usage(app.app_id, "2031-01-01") == (4, 11)
    assert apps.usage(app.app_id, "2031-01-02") == (4, 11)


def test_requests_counted_before_a_limit_was_set_count_against_it(apps: AppStore) -> None:
    quotas = Quotas(apps, max_concurrent=4)
    app = limited(apps)
    quotas.admit(app)
    quotas.admit(app)  # not flushed yet
    capped = replace(app, daily_limit=5)
    assert [admitted(quotas, capped) for _ in range(4)] == [None, None, None, ErrorCode.DAILY_LIMIT]
    quotas.flush()
    assert apps.usage(app.app_id, today()) == (5, 5)


class Stalled:
    """An app store whose usage calls wait until released, as on a database that has stopped
    answering."""

    def __init__(self, inner: AppStore) -> None:
        self.inner = inner
        self.entered = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def _stall(self) -> None:
        self.entered.set()
        assert self.release.wait(60)

    def usage(self, app_id: str, day: str) -> tuple[int, int]:
        self._stall()
        return self.inner.usage(app_id, day)

    def lease_usage(self, app_id: str, day: str, size: Callable[[int, int], int]) -> int:
        self._stall()
        return self.inner.lease_usage(app_id, day, size)

    def add_usage(self, counts: dict[tuple[str, str], int], batch_id: str | None = None) -> None:
        self._stall()
        self.inner.add_usage(counts, batch_id)


@pytest.mark.parametrize("call", ["admit", "flush"])
def test_a_stalled_store_never_holds_the_event_loops_lock(apps: AppStore, call: str) -> None:
    stalled = Stalled(apps)
    quotas = Quotas(stalled, max_concurrent=4)  # type: ignore[arg-type]
    app = limited(apps, total=10)
    if call == "flush":
        stalled.release.set()
        quotas.admit(app)  # a lease with some left, for the flush to give back
        stalled.release.clear()
        stalled.entered.clear()
        stuck = threading.Thread(target=quotas.flush)
    else:
        stuck = threading.Thread(target=quotas.admit, args=(app,))
    stuck.start()
    try:
        assert stalled.entered.wait(30)

        def take_a_slot() -> None:
            quotas.enter()  # what the event loop does for every request
            quotas.leave()

        slot = threading.Thread(target=take_a_slot)
        slot.start()
        slot.join(10)
        assert not slot.is_alive(), "enter() waited for the store"
    finally:
        stalled.release.set()
        stuck.join()
