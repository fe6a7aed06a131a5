"""The SQLite store on its own: transactions, tenancy, migrations and backups, with made-up embeddings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import FaceStore, NewFace
from renlian.store.sqlite import MIGRATIONS, SQLiteStore


def face(seed: int, model: str = "mbf") -> NewFace:
    vector = np.random.default_rng(seed).standard_normal(8).astype(np.float32)
    return NewFace(f"sha{seed}", model, vector / np.linalg.norm(vector), b"jpeg" + bytes([seed]))


def enrol(
    store: FaceStore, app: str, uid: str, groups: list[str], *faces: NewFace, max_faces: int = 10
) -> None:
    store.enrol(
        app,
        uid,
        "info",
        groups,
        list(faces),
        replace=False,
        require_existing=False,
        max_group_faces=max_faces,
    )


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "store.sqlite3")


def test_durability_settings(store: SQLiteStore) -> None:
    db = sqlite3.connect(store.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert store._writer.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)


def test_a_failed_write_leaves_nothing_behind(store: SQLiteStore) -> None:
    enrol(store, "a", "u1", ["g"], face(1))
    # The second group's insert hits the duplicate photo: the first group's part must roll back too.
    enrol(store, "a", "u1", ["h"], face(2))
    with pytest.raises(FaceApiError) as caught:
        enrol(store, "a", "u1", ["h", "g"], face(1))
    assert caught.value.error is ErrorCode.IMAGE_EXISTED
    assert [f.face_id for f in store.faces()] == [1, 2]
    assert [r.group_id for r in store.user("a", "u1")] == ["g", "h"]


def test_group_capacity_is_enforced(store: SQLiteStore) -> None:
    enrol(store, "a", "u1", ["g"], face(1), face(2), max_faces=3)
    with pytest.raises(FaceApiError) as caught:
        enrol(store, "a", "u2", ["g"], face(3), face(4), max_faces=3)
    assert caught.value.error is ErrorCode.FAIL_TO_ADD_USER
    assert store.user("a", "u2") == []


def test_apps_never_see_each_other(store: SQLiteStore) -> None:
    enrol(store, "a", "same_uid", ["g"], face(1))
    enrol(store, "b", "same_uid", ["g"], face(1))  # same photo, same ids, other app: allowed
    assert [r.group_id for r in store.user("b", "same_uid")] == ["g"]
    store.delete_user("a", "same_uid", None)
    assert store.user("a", "same_uid") == [] and len(store.user("b", "same_uid")) == 1
    assert store.groups("a", 0, 10) == [] and store.groups("b", 0, 10) == ["g"]
    assert {f.app_id for f in store.faces()} == {"b"}


def test_crops_are_kept_once_and_dropped_with_their_last_face(store: SQLiteStore) -> None:
    enrol(store, "a", "u1", ["g", "h"], face(1))
    db = sqlite3.connect(store.path)
    assert db.execute("SELECT COUNT(*) FROM crops").fetchone()[0] == 1
    store.delete_user("a", "u1", ["g"])
    assert db.execute("SELECT COUNT(*) FROM crops").fetchone()[0] == 1
    store.delete_user("a", "u1", None)
    assert db.execute("SELECT COUNT(*) FROM crops").fetchone()[0] == 0


def test_reopening_keeps_everything_and_does_not_migrate_twice(tmp_path: Path) -> None:
    first = SQLiteStore(tmp_path / "s.sqlite3")
    enrol(first, "a", "u1", ["g"], face(1), face(2))
    first.close()
    again = SQLiteStore(tmp_path / "s.sqlite3")
    stored = list(again.faces())
    assert [f.uid for f in stored] == ["u1", "u1"]
    assert np.allclose(stored[0].embedding, face(1).embedding)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite3"
    SQLiteStore(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer"):
        SQLiteStore(path)


def test_backup_is_a_complete_consistent_copy(store: SQLiteStore, tmp_path: Path) -> None:
    enrol(store, "a", "u1", ["g"], face(1))
    target = tmp_path / "copy.sqlite3"
    store.backup(str(target))
    copy = SQLiteStore(target)
    assert [(f.uid, f.group_id) for f in copy.faces()] == [("u1", "g")]


def test_stale_crops_and_reembedding(store: SQLiteStore) -> None:
    enrol(store, "a", "u1", ["g"], face(1, "sface"), face(2, "mbf"))
    assert store.count_stale("mbf") == 1
    ((face_id, jpeg),) = store.stale_crops("mbf", 10)
    assert jpeg == face(1).crop_jpeg
    store.set_embedding(face_id, "mbf", np.ones(8, np.float32))
    assert store.count_stale("mbf") == 0
