"""`renlian migrate --to URL`: an SQLite store copied into an empty PostgreSQL database, counted, all
or nothing; and `renlian doctor` and `renlian backup` pointed at PostgreSQL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import psycopg
import pytest

from renlian.auth.apps import new_app
from renlian.cli import main
from renlian.store.postgres import MIGRATIONS, PostgresStore
from renlian.store.postgres_apps import PostgresAppStore
from renlian.store.sqlite import SQLiteStore
from renlian.store.sqlite_apps import SQLiteAppStore
from tests.store.test_sqlite import enrol, face
from tests.token_rows import add_token_row


def sqlite_store(data_dir: Path) -> tuple[str, str]:
    """A store with two apps, a token, usage and faces; the apps' ids."""
    store = SQLiteStore(data_dir / "renlian.sqlite3")
    apps = SQLiteAppStore(store)
    first, second = new_app("one", brain_all_scope=True), new_app("two", brain_all_scope=False)
    apps.create_app(first)
    apps.create_app(second)
    with store.transaction() as db:
        add_token_row(db, "digest", first.app_id, "access", 2**40)
    apps.add_usage({(first.app_id, "2026-01-01"): 7})
    enrol(store, first.app_id, "u1", ["g", "h"], face(1), face(2))
    enrol(store, second.app_id, "u2", ["g"], face(3))
    store.add_group(second.app_id, "empty")
    store.close()
    return first.app_id, second.app_id


def rows(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        return {
            table: (connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone() or (0,))[0]
            for table in ("apps", "tokens", "usage", "face_groups", "users", "faces", "crops")
        }


def test_migrate_copies_everything_and_counts_it(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = sqlite_store(tmp_path)
    assert main(["migrate", "--to", database_url, "--data-dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    expected = {"apps": 2, "tokens": 1, "usage": 1, "face_groups": 4, "users": 3, "faces": 5, "crops": 3}
    assert rows(database_url) == expected
    for table, count in expected.items():
        assert f"{table:12} {count}\n" in printed
    store = PostgresStore(database_url)
    apps = PostgresAppStore(store)
    original = SQLiteAppStore(SQLiteStore(tmp_path / "renlian.sqlite3"))
    assert apps.apps() == original.apps()
    assert apps.token("digest", "access") == (first, 2**40) and apps.usage(first, "2026-01-01") == (7, 7)
    assert store.registered_groups(second, 0, 10) == ["g", "empty"]
    assert np.allclose(next(store.faces()).embedding, face(1).embedding)
    assert store.crop_by_token(first, "sha2") == face(2).crop_jpeg
    # The ids go on after the copied ones.
    enrol(store, second, "u3", ["g"], face(4))
    assert [f.face_id for f in store.faces()] == [1, 2, 3, 4, 5, 6]
    store.close()


def test_migrate_refuses_a_database_that_holds_rows(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite_store(tmp_path)
    assert main(["migrate", "--to", database_url, "--data-dir", str(tmp_path)]) == 0
    before = rows(database_url)
    assert main(["migrate", "--to", database_url, "--data-dir", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert rows(database_url) == before


def test_a_failed_migrate_leaves_the_target_empty(
    tmp_path: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    first, _ = sqlite_store(tmp_path)
    # SQLite keeps a NUL character in text; PostgreSQL cannot: the copy fails at the last user row.
    db = sqlite3.connect(tmp_path / "renlian.sqlite3")
    db.execute(
        "INSERT INTO users (app_id, group_id, uid, user_info) VALUES (?, 'g', 'u9', ?)", (first, "a\x00b")
    )
    db.commit()
    db.close()
    assert main(["migrate", "--to", database_url, "--data-dir", str(tmp_path)]) == 2
    assert "nothing was copied" in capsys.readouterr().err
    assert set(rows(database_url).values()) == {0}


def test_doctor_and_backup_with_postgresql(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    PostgresStore(database_url).close()
    monkeypatch.setenv("RENLIAN_DATABASE_URL", database_url)
    main(["doctor", "--data-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert "RENLIAN_DATABASE_URL" not in out
    assert f"ok: database {database_url} reachable, schema {len(MIGRATIONS)} " in out, out
    assert main(["backup", str(tmp_path / "copy"), "--data-dir", str(tmp_path)]) == 2
    assert "pg_dump" in capsys.readouterr().err
    monkeypatch.setenv("RENLIAN_DATABASE_URL", database_url.rsplit("/", 1)[0] + "/no_such_database")
    assert main(["doctor", "--data-dir", str(tmp_path)]) == 1
    assert "cannot be reached" in capsys.readouterr().out
