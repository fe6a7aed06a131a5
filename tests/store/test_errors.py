"""Driver errors leave the store as 216300 (Baidu's retryable "db error"), after the busy wait, with
a detail that names the kind of failure and nothing the caller sent. Real SQLite failures only: a
lock held by another connection, pages damaged on disk, a constraint."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from renlian.auth.apps import new_app
from renlian.errors import ErrorCode, FaceApiError
from renlian.store.sqlite import SQLiteStore
from renlian.store.sqlite_apps import SQLiteAppStore
from tests.store.test_sqlite import enrol, face
from tests.token_rows import add_token_row

SECRET_UID = "uid_that_must_not_leak"


@pytest.fixture
def locker(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """Another connection to the store's file, as `renlian import` or a second server would hold."""
    SQLiteStore(tmp_path / "store.sqlite3").close()
    connection = sqlite3.connect(tmp_path / "store.sqlite3", isolation_level=None, check_same_thread=False)
    yield connection
    connection.close()


def db_error(caught: pytest.ExceptionInfo[FaceApiError]) -> str:
    assert caught.value.error is ErrorCode.DB_ERROR
    assert caught.value.error.code == 216300
    return caught.value.detail or ""


def test_a_write_locked_past_the_busy_timeout_is_216300(tmp_path: Path, locker: sqlite3.Connection) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3", busy_timeout=0.3)
    locker.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    with pytest.raises(FaceApiError) as caught:
        enrol(store, "a", SECRET_UID, ["g"], face(1))
    waited = time.monotonic() - started
    detail = db_error(caught)
    assert "busy" in detail and "SQLITE_BUSY" in detail
    assert SECRET_UID not in str(caught.value)
    assert 0.25 <= waited < 3, waited  # it waited for the lock, then gave up at the configured time
    # Reads go on beside the lock (WAL), and once it is released the same store writes again.
    assert store.user("a", SECRET_UID) == []
    locker.execute("ROLLBACK")
    enrol(store, "a", SECRET_UID, ["g"], face(1))
    assert [r.group_id for r in store.user("a", SECRET_UID)] == ["g"]


def test_a_lock_released_within_the_busy_timeout_is_waited_for(
    tmp_path: Path, locker: sqlite3.Connection
) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3", busy_timeout=5)
    locker.execute("BEGIN EXCLUSIVE")
    releaser = threading.Timer(0.3, locker.execute, ("ROLLBACK",))
    releaser.start()
    enrol(store, "a", "u1", ["g"], face(1))
    releaser.join()
    assert [r.uid for r in store.user("a", "u1")] == ["u1"]


def test_app_and_token_writes_locked_out_are_216300_without_secrets(
    tmp_path: Path, locker: sqlite3.Connection
) -> None:
    apps = SQLiteAppStore(SQLiteStore(tmp_path / "store.sqlite3", busy_timeout=0.1))
    app = new_app("locked")
    locker.execute("BEGIN EXCLUSIVE")
    with pytest.raises(FaceApiError) as created:
        apps.create_app(app)
    with pytest.raises(FaceApiError) as purged:
        apps.purge_tokens()
    for caught in (created, purged):
        db_error(caught)
        assert app.secret_key not in str(caught.value) and app.api_key not in str(caught.value)
    locker.execute("ROLLBACK")
    apps.create_app(app)
    assert apps.app(app.app_id) == app


def test_a_constraint_outside_the_known_ones_is_216300(tmp_path: Path) -> None:
    apps = SQLiteAppStore(SQLiteStore(tmp_path / "store.sqlite3"))
    first = new_app("first")
    apps.create_app(first)
    with pytest.raises(FaceApiError) as caught:
        apps.create_app(replace(new_app("twin"), api_key=first.api_key))
    assert "constraint" in db_error(caught)
    assert first.api_key not in str(caught.value)
    # The known one keeps its own code.
    store = SQLiteStore(tmp_path / "faces.sqlite3")
    enrol(store, "a", "u1", ["g"], face(1))
    with pytest.raises(FaceApiError) as duplicate:
        enrol(store, "a", "u1", ["g"], face(1))
    assert duplicate.value.error is ErrorCode.IMAGE_EXISTED


def damage(path: Path, *tables: str) -> None:
    """Overwrite the pages of these tables and their indexes with garbage, as a failing disk would."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the main file, none in the WAL
    (page_size,) = db.execute("PRAGMA page_size").fetchone()
    marks = ",".join("?" * len(tables))
    pages = [
        page
        for (page,) in db.execute(
            f"SELECT rootpage FROM sqlite_schema WHERE tbl_name IN ({marks}) AND rootpage > 0", tables
        )
    ]
    db.close()
    assert pages
    with path.open("r+b") as file:
        for page in pages:
            file.seek((page - 1) * page_size)
            file.write(b"\xa5" * page_size)


def test_reads_of_damaged_tables_are_216300(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    store = SQLiteStore(path)
    apps = SQLiteAppStore(store)
    app = new_app("damaged")
    apps.create_app(app)
    with store.transaction() as db:
        add_token_row(db, "a" * 64, app.app_id, "access", int(time.time()) + 60)
    enrol(store, app.app_id, "u1", ["g"], face(1))
    store.close()
    damage(path, "users", "faces", "apps", "tokens")

    store = SQLiteStore(path)  # the schema and the header are intact: it opens
    apps = SQLiteAppStore(store)
    reads: dict[str, Callable[[], object]] = {
        "user": lambda: store.user(app.app_id, "u1"),
        "user_info": lambda: store.user_info(app.app_id, "g", "u1"),
        "group_has_users": lambda: store.group_has_users(app.app_id, "g"),
        "faces": lambda: list(store.faces()),
        "embeddings": lambda: list(store.embeddings("mbf")),
        "app_by_key": lambda: apps.app_by_key(app.api_key),
        "token": lambda: apps.token("a" * 64, "access"),
    }
    for name, read in reads.items():
        with pytest.raises(FaceApiError) as caught:
            read()
        detail = db_error(caught)
        assert "damaged" in detail and "SQLITE_CORRUPT" in detail, (name, detail)
        assert app.api_key not in str(caught.value) and "a" * 64 not in str(caught.value)
