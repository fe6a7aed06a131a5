"""Secrets at rest: owner-only files whatever the umask, expired tokens purged, backups that neither
migrate nor widen what they copy."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from renlian.store.sqlite import MIGRATIONS, SQLiteStore, backup_file
from renlian.store.sqlite_apps import EXPIRED_TOKEN_GRACE_SECONDS, PURGE_BATCH, SQLiteAppStore
from tests.store.test_sqlite import enrol, face
from tests.token_rows import add_token_row


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most permissive umask, so that only renlian's own choices can make a file private."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_store_files_and_data_dir_are_owner_only(tmp_path: Path, open_umask: None) -> None:
    data = tmp_path / "parent" / "data"
    store = SQLiteStore(data / "renlian.sqlite3")
    enrol(store, "a", "u1", ["g"], face(1))  # a write, so the -wal and -shm files exist
    assert mode(data) == 0o700
    for name in ("renlian.sqlite3", "renlian.sqlite3-wal", "renlian.sqlite3-shm"):
        assert mode(data / name) == 0o600, name
    target = tmp_path / "copy.sqlite3"
    store.backup(str(target))
    assert mode(target) == 0o600
    with pytest.raises(FileExistsError):
        store.backup(str(target))


def test_a_store_left_readable_is_narrowed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "renlian.sqlite3"
    SQLiteStore(path).close()
    path.chmod(0o644)
    SQLiteStore(path).close()
    assert mode(path) == 0o600
    assert "readable beyond its owner" in caplog.text


def test_an_existing_open_data_dir_is_kept_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "shared"
    data.mkdir()
    data.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="renlian.store"):
        SQLiteStore(data / "renlian.sqlite3").close()
    assert mode(data) == 0o755  # the user chose it; it is reported, not changed
    assert "chmod 700" in caplog.text
    assert mode(data / "renlian.sqlite3") == 0o600


def test_expired_token_rows_are_purged(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3")
    apps = SQLiteAppStore(store)
    now = int(time.time())
    with store.transaction() as db:
        # More than a purge batch of long-expired rows: the purge goes on until none is left.
        for number in range(PURGE_BATCH + 5):
            add_token_row(db, f"old{number}", "app", "access", now - EXPIRED_TOKEN_GRACE_SECONDS - 60)
        add_token_row(db, "recent", "app", "access", now - 60)
        add_token_row(db, "live", "app", "access", now + 3600)
        add_token_row(db, "issued", "app", "refresh", now + 3600)
    assert apps.purge_tokens() == PURGE_BATCH + 5
    assert apps.token("old0", "access") is None
    # A token that expired a moment ago is still known, so that it answers "expired" (111).
    assert apps.token("recent", "access") == ("app", now - 60)
    assert apps.token("live", "access") == ("app", now + 3600)
    db = sqlite3.connect(tmp_path / "store.sqlite3")
    assert sorted(row[0] for row in db.execute("SELECT token_sha256 FROM tokens")) == [
        "issued",
        "live",
        "recent",
    ]
    plan = " ".join(
        str(row)
        for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT token_sha256 FROM tokens WHERE expires_at < ? LIMIT 100", (now,)
        )
    )
    assert "tokens_by_expiry" in plan  # the purge does not scan every token


def older_store(path: Path, version: int = 1) -> None:
    """A store as an older renlian left it: the first `version` migrations, and a user."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    db.execute("INSERT INTO users (app_id, group_id, uid, user_info) VALUES ('a', 'g', 'u1', 'info')")
    db.close()


def test_backup_reads_the_store_without_migrating_it(tmp_path: Path, open_umask: None) -> None:
    source = tmp_path / "renlian.sqlite3"
    older_store(source)
    before = source.read_bytes()
    target = tmp_path / "copy.sqlite3"
    backup_file(source, target)
    assert source.read_bytes() == before
    for path in (source, target):
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
        assert db.execute("SELECT uid FROM users").fetchall() == [("u1",)]
        db.close()
    assert mode(target) == 0o600
    with pytest.raises(FileExistsError):
        backup_file(source, target)
