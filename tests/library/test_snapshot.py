"""Start-up from a snapshot: brought up to the store by the changes logged since it was taken, and
rebuilt from the store when the log no longer holds them or the database is another one."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from renlian.library import rows as rows_module
from renlian.library.index import FaceIndex
from renlian.library.rows import RowFile
from renlian.store.base import NewFace
from renlian.store.sqlite import SQLiteStore

MODEL, DIM, APP = "mbf", 64, "app"


def enrol(store: SQLiteStore, index: FaceIndex | None, uid: str, group: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    vector = rng.standard_normal(DIM).astype(np.float32)
    face = NewFace(f"sha{seed}", MODEL, vector / np.linalg.norm(vector), b"crop")
    changes = store.enrol(
        APP, uid, "", [group], [face], replace=False, require_existing=False, max_group_faces=1000
    )
    if index is not None:
        index.apply(changes)


def opened(store: SQLiteStore, caplog: pytest.LogCaptureFixture) -> tuple[FaceIndex, list[str]]:
    """A fresh index over the store, and the groups it rebuilt rather than restored."""
    caplog.clear()
    index = FaceIndex(MODEL, DIM, store.snapshot_dir() / MODEL)  # type: ignore[operator]
    with caplog.at_level(logging.INFO, logger="renlian.library"):
        index.open(store)
    rebuilt = [r.getMessage().split()[4] for r in caplog.records if "rebuilding group" in r.getMessage()]
    return index, rebuilt


def answers(index: FaceIndex) -> list[object]:
    rng = np.random.default_rng(99)
    queries = rng.standard_normal((4, DIM)).astype(np.float32)
    found: list[object] = [index.contents()]
    for group in ("g1", "g2"):
        held = index.group(APP, group)
        assert held is not None
        found.append(held.search_many(queries, 3, 2))
    return found


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "renlian.sqlite3")
    for seed in range(40):
        enrol(store, None, f"u{seed % 13}", f"g{seed % 2 + 1}", seed)
    return store


def test_a_restart_restores_every_group_unchanged(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    first, rebuilt = opened(store, caplog)
    assert sorted(rebuilt) == ["g1", "g2"]  # no snapshot yet: built from the store, then saved
    assert first.directory is not None
    for path in [first.directory.parent, first.directory, *first.directory.iterdir()]:
        assert path.stat().st_mode & 0o077 == 0, path  # embeddings and uids: the owner's alone
    expected = answers(first)
    first.close()
    second, rebuilt = opened(store, caplog)
    assert rebuilt == []
    assert answers(second) == expected
    second.close()


def test_writes_are_saved_at_close_and_a_crash_forces_a_rebuild(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    index, _ = opened(store, caplog)
    index.apply(store.delete_user(APP, "u0", ["g1"]))  # its first row is g1's first: the last moves in
    group = index.group(APP, "g1")
    assert group is not None and group.meta_path is not None
    assert not group.meta_path.exists()  # the snapshot went with the first change in place
    expected = answers(index)
    index.close()  # without save(): as after kill -9
    index, rebuilt = opened(store, caplog)
    assert rebuilt == ["g1"] and answers(index) == expected
    enrol(store, index, "newer", "g2", 1001)
    index.save()
    expected = answers(index)
    index.close()
    index, rebuilt = opened(store, caplog)
    assert rebuilt == [] and answers(index) == expected
    index.close()


def test_a_snapshot_outlives_rows_appended_after_it(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Adds only append rows: the snapshot still holds for its change number, so neither a start
    that applies such changes nor a crash after them rewrites or rebuilds the group."""
    index, _ = opened(store, caplog)
    index.close()
    enrol(store, None, "elsewhere", "g1", 2000)  # the store changes behind the index's back
    enrol(store, None, "elsewhere", "g2", 2001)
    index, rebuilt = opened(store, caplog)
    assert rebuilt == []
    assert index.contents() == in_store(store)
    group = index.group(APP, "g1")
    assert group is not None and index.directory is not None
    assert not group.saved  # older than the rows: the clean stop writes it again
    written = {path: path.stat().st_mtime_ns for path in index.directory.glob("*.meta")}
    assert len(written) == 2
    enrol(store, index, "new", "g1", 1000)
    expected = answers(index)
    assert {path: path.stat().st_mtime_ns for path in written} == written
    index.close()  # without save(): as after kill -9
    index, rebuilt = opened(store, caplog)
    assert rebuilt == [] and answers(index) == expected
    assert index.contents() == in_store(store)
    index.close()


def in_store(store: SQLiteStore) -> dict[tuple[str, str], dict[int, str]]:
    found: dict[tuple[str, str], dict[int, str]] = {}
    for app_id, group_id, face_id, uid, _ in store.embeddings(MODEL):
        found.setdefault((app_id, group_id), {})[face_id] = uid
    return found


def test_writes_by_another_process_are_applied_from_the_log(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    index, _ = opened(store, caplog)
    index.close()
    enrol(store, None, "elsewhere", "g2", 2000)  # the store changes behind the index's back
    store.delete_user(APP, "u0", ["g1"])
    index, rebuilt = opened(store, caplog)
    assert rebuilt == []
    assert index.contents() == in_store(store)
    assert index.applied == store.feed_state().numbers
    index.close()


def test_a_pruned_log_or_another_database_forces_a_rebuild(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    index, _ = opened(store, caplog)
    index.close()
    enrol(store, None, "elsewhere", "g2", 2000)
    # The change g2 missed is no longer logged; nor is it known that g1 was not touched (nothing
    # vouched for it: the index was closed as by kill -9).
    assert store.prune_changes(0, 0) > 0
    index, rebuilt = opened(store, caplog)
    assert sorted(rebuilt) == ["g1", "g2"] and index.contents() == in_store(store)
    index.save()
    index.close()
    # A backup is another database (its own epoch), though it holds the same numbers: restored over
    # the store, with a write after the backup lost, no snapshot taken since is trusted against it.
    store.backup(str(tmp_path / "backup.sqlite3"))
    enrol(store, None, "after_backup", "g1", 2001)
    index, _ = opened(store, caplog)
    index.save()
    index.close()
    store.close()
    (tmp_path / "backup.sqlite3").replace(store.path)
    for suffix in ("-wal", "-shm"):
        Path(f"{store.path}{suffix}").unlink(missing_ok=True)
    restored = SQLiteStore(store.path)
    index, rebuilt = opened(restored, caplog)
    assert sorted(rebuilt) == ["g1", "g2"] and index.contents() == in_store(restored)
    assert all(uid != "after_backup" for rows in index.contents().values() for uid in rows.values())
    index.close()


def test_an_unchanged_group_is_vouched_for_at_close(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A group no change touched still holds the app's latest number at close: without the voucher,
    a log pruned past its snapshot would force a rebuild of a group that is exact."""
    index, _ = opened(store, caplog)
    enrol(store, index, "new", "g1", 1000)
    index.applied = store.feed_state().numbers  # as the follower records it
    index.save()
    index.close()
    store.prune_changes(0, 0)
    index, rebuilt = opened(store, caplog)
    assert rebuilt == [] and index.contents() == in_store(store)
    index.close()


@pytest.mark.parametrize(
    "damage", ["rows byte", "rows truncated", "meta byte", "meta truncated", "meta gone"]
)
def test_a_damaged_snapshot_is_rebuilt(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    index, _ = opened(store, caplog)
    expected = answers(index)
    group = index.group(APP, "g1")
    assert group is not None and group.meta_path is not None
    meta, rows = group.meta_path, group.meta_path.with_suffix(".rows")
    index.close()
    target = rows if damage.startswith("rows") else meta
    data = bytearray(target.read_bytes())
    if damage.endswith("byte"):
        data[len(data) - 7] ^= 0x10
        target.write_bytes(bytes(data))
    elif damage.endswith("truncated"):
        target.write_bytes(bytes(data[: len(data) - 100]))
    else:
        target.unlink()
    index, rebuilt = opened(store, caplog)
    assert rebuilt == ["g1"]
    assert answers(index) == expected
    index.close()


def test_a_second_index_on_the_same_directory_keeps_to_itself(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = opened(store, caplog)
    second, _ = opened(store, caplog)
    assert first.directory is not None and second.directory is None
    enrol(store, second, "only_second", "g1", 3000)
    assert answers(first)[0] != answers(second)[0]  # the first's rows were not touched
    second.close()
    first.close()


@pytest.mark.parametrize("span_bytes", [0, 1 << 30])  # one pread per run of rows; one for the span
def test_rows_come_back_in_the_order_asked(span_bytes: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows_module, "SPAN_BYTES", span_bytes)
    vectors = np.random.default_rng(4).standard_normal((50, 8)).astype(np.float32)
    held = RowFile(8)
    held.write(0, vectors)
    asked = np.array([7, 3, 4, 5, 49, 0, 3], np.intp)
    assert np.array_equal(held.read(asked), vectors[asked])
    held.move(49, 1)
    assert np.array_equal(held.read(np.array([1], np.intp)), vectors[49:50])
    held.close()


def test_a_group_loaded_around_the_write_path_is_restored_from_its_snapshot(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture
) -> None:
    """A bulk load (the benches') writes faces without registering their group: the first start
    finds it by counting every group's faces, and the next restores it from its snapshot."""
    vector = np.ones(DIM, np.float32) / np.sqrt(DIM)
    with store.transaction() as db:
        db.execute(
            "INSERT INTO faces (app_id, group_id, uid, image_sha256, model, embedding) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (APP, "bulk", "loaded", "sha-bulk", MODEL, vector.astype("<f4").tobytes()),
        )
    index, rebuilt = opened(store, caplog)
    assert "bulk" in rebuilt and index.contents()[APP, "bulk"] == {
        max(index.contents()[APP, "bulk"]): "loaded"
    }
    index.save()
    index.close()
    index, rebuilt = opened(store, caplog)
    assert rebuilt == [] and index.contents() == in_store(store)
    index.close()
