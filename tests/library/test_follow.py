"""The index follows the store's change feed on the embedded SQLite store (library/sync.py): writes of
another process (`renlian import`) become searchable without a restart, a restart after them loses
nothing, an index update that failed after its commit refuses that app alone until it is rebuilt,
and a search keeps the group it started with through a rebuild.

Real SQLite files, the real analyzer's embedder name and size, made-up unit vectors as faces."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.index import FaceIndex
from renlian.library.library import FaceLibrary
from renlian.library.rows import FAULT_FULL_ENV
from renlian.store.base import NewFace
from renlian.store.sqlite import SQLiteStore
from renlian.vision.analyzer import FaceAnalyzer
from tests.library.test_library import APP, race, store_contents


def unit_face(analyzer: FaceAnalyzer, serial: int) -> NewFace:
    vector = np.random.default_rng(serial).standard_normal(analyzer.embedder.dim).astype(np.float32)
    return NewFace(f"photo{serial}", analyzer.embedder.name, vector / np.linalg.norm(vector), b"crop")


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> None:
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, "not within the freshness promise"
        time.sleep(0.01)


def best(library: FaceLibrary, app_id: str, group: str, face: NewFace) -> str | None:
    hits = library.search_embeddings(app_id, [group], face.embedding[None, :], 1)[0]
    return hits[0].uid if hits and hits[0].scores[0] > 0.999 else None


@pytest.fixture
def opened(tmp_path: Path, analyzer: FaceAnalyzer) -> Iterator[Callable[..., FaceLibrary]]:
    """Libraries over one SQLite file, each with its own connection, as separate processes have."""
    libraries: list[FaceLibrary] = []

    def open_library(
        searchable: bool = True, poll_seconds: float = 0.05, max_lag_seconds: float = 1.0
    ) -> FaceLibrary:
        library = FaceLibrary(
            SQLiteStore(tmp_path / "renlian.sqlite3"),
            analyzer,
            searchable=searchable,
            poll_seconds=poll_seconds,
            max_lag_seconds=max_lag_seconds,
            lock_timeout=2.0,
        )
        libraries.append(library)
        return library

    yield open_library
    for library in libraries:
        library.close()
        library.store.close()


def test_a_running_index_sees_another_process_write_without_a_restart(
    opened: Callable[..., FaceLibrary], analyzer: FaceAnalyzer
) -> None:
    server = opened()
    importer = opened(searchable=False)  # what `renlian import` opens beside the server
    faces = [unit_face(analyzer, serial) for serial in range(8)]
    for serial, face in enumerate(faces):
        importer.add(APP, f"imported{serial}", None, ["g"], [face], replace=False, require_existing=False)
    eventually(lambda: all(best(server, APP, "g", face) == f"imported{n}" for n, face in enumerate(faces)))
    importer.delete(APP, "imported0", None)
    eventually(lambda: best(server, APP, "g", faces[0]) is None)
    assert server.sync is not None and server.sync.reloads == 0
    assert server.index.contents() == store_contents(server.store, analyzer.embedder.name)  # type: ignore[arg-type]


def test_a_restart_after_an_import_and_an_enrolment_finds_everyone(
    opened: Callable[..., FaceLibrary], analyzer: FaceAnalyzer
) -> None:
    """The reported failure: imported users listed by getusers but never found by search again."""
    server = opened()
    importer = opened(searchable=False)
    faces = [unit_face(analyzer, serial) for serial in range(9)]
    for serial, face in enumerate(faces[:8]):
        importer.add(APP, f"imported{serial}", None, ["g"], [face], replace=False, require_existing=False)
    server.add(APP, "enrolled", None, ["g"], [faces[8]], replace=False, require_existing=False)
    server.close()  # a clean stop: snapshots and vouchers written
    restarted = opened()
    names = [f"imported{n}" for n in range(8)] + ["enrolled"]
    assert [best(restarted, APP, "g", face) for face in faces] == names


def test_a_failed_index_update_refuses_that_app_alone_until_rebuilt(
    opened: Callable[..., FaceLibrary],
    analyzer: FaceAnalyzer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    flag = tmp_path / "disk-full"
    monkeypatch.setenv(FAULT_FULL_ENV, str(flag))
    server = opened()
    alice, bob, carol = (unit_face(analyzer, serial) for serial in range(3))
    server.add("other", "bob", None, ["g"], [bob], replace=False, require_existing=False)
    flag.touch()  # the disk under the rows files is full from now on
    # The write committed, so it is acknowledged; the index could not take it.
    server.add(APP, "alice", None, ["g"], [alice], replace=False, require_existing=False)
    with pytest.raises(FaceApiError) as refused:
        best(server, APP, "g", alice)
    assert refused.value.error == ErrorCode.INDEX_NOT_CURRENT
    assert best(server, "other", "g", bob) == "bob"  # another app is not held up
    time.sleep(0.3)  # rebuilds keep failing while the disk is full: still refused, never wrong
    with pytest.raises(FaceApiError):
        best(server, APP, "g", alice)
    flag.unlink()
    eventually(lambda: _answers(lambda: best(server, APP, "g", alice) == "alice"))
    server.add(APP, "carol", None, ["g"], [carol], replace=False, require_existing=False)
    assert best(server, APP, "g", carol) == "carol"
    assert server.sync is not None and server.sync.reloads >= 1
    assert server.index.contents() == store_contents(server.store, analyzer.embedder.name)  # type: ignore[arg-type]


def _answers(check: Callable[[], bool]) -> bool:
    try:
        return check()
    except FaceApiError as exc:
        assert exc.error == ErrorCode.INDEX_NOT_CURRENT
        return False


def test_processes_racing_on_one_file_converge_without_rebuilds(
    opened: Callable[..., FaceLibrary], analyzer: FaceAnalyzer
) -> None:
    first, second = opened(), opened()
    unexpected: list[FaceApiError] = []
    threads = [
        threading.Thread(target=lambda node=node: unexpected.extend(race(node, threads=3, operations=150)))
        for node in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unexpected == []
    numbers = first.store.feed_state().numbers
    eventually(lambda: first.index.applied == second.index.applied == numbers)
    expected = store_contents(first.store, analyzer.embedder.name)  # type: ignore[arg-type]
    assert expected and first.index.contents() == second.index.contents() == expected
    assert first.sync is not None and second.sync is not None
    assert first.sync.reloads == second.sync.reloads == 0


def test_a_search_keeps_its_group_through_a_rebuild(tmp_path: Path) -> None:
    """The group a search holds is closed only after the search: its rows file's descriptor cannot be
    reused by the next group's file while the search still reads it."""
    store = SQLiteStore(tmp_path / "renlian.sqlite3")
    dim = 16
    vectors = np.random.default_rng(0).standard_normal((3, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    for serial, vector in enumerate(vectors):
        face = NewFace(f"p{serial}", "m", vector, b"crop")
        store.enrol(
            APP, f"u{serial}", "", ["g"], [face], replace=False, require_existing=False, max_group_faces=9
        )
    index = FaceIndex("m", dim)
    index.open(store)
    with index.reading(APP, "g") as held:
        assert held is not None
        index.swap_app(APP, index.build_app(store, APP))  # a rebuild, while the search goes on
        descriptor = held._file._fd
        os.fstat(descriptor)  # still open
        assert [hit.uid for hit in held.search(vectors[1], 1, 1)] == ["u1"]
    with pytest.raises(OSError):
        os.fstat(descriptor)  # closed with the last reader
    with index.reading(APP, "g") as fresh:
        assert fresh is not None and fresh is not held and len(fresh) == 3
    index.close()
    store.close()


def test_an_apps_first_write_does_not_refuse_it_while_its_lock_is_busy(
    opened: Callable[..., FaceLibrary], analyzer: FaceAnalyzer
) -> None:
    """An app's first number appears while its write lock is busy (a write of this process waiting
    behind a search): the poll that proved it had no write still stands, so it is not refused."""
    server = opened()
    other = opened(searchable=False)
    assert server.sync is not None
    time.sleep(0.2)
    with server.sync.writing(APP):
        other.add(APP, "first", None, ["g"], [unit_face(analyzer, 1)], replace=False, require_existing=False)
        time.sleep(0.5)  # polls come and go; none can take the app's lock
        server.sync.check(APP)  # the last proof is half a second old, within the promise
    eventually(lambda: best(server, APP, "g", unit_face(analyzer, 1)) == "first")


def test_a_search_after_a_store_read_sees_what_that_read_saw(
    opened: Callable[..., FaceLibrary], analyzer: FaceAnalyzer
) -> None:
    """v3 search checks its groups in the store, then searches the index: the index is brought up
    to the number read after the check, so a group the check found is never searched before its
    faces arrive (here the follower polls too seldom to have applied them)."""
    server = opened(poll_seconds=30.0, max_lag_seconds=60.0)
    other = opened(searchable=False)
    face = unit_face(analyzer, 5)
    other.add(APP, "new_here", None, ["fresh"], [face], replace=False, require_existing=False)
    number = server.require_groups(APP, ["fresh"])
    [[hit]] = server.search_embeddings(APP, ["fresh"], face.embedding[None, :], 1, at_least=number)
    assert hit.uid == "new_here"
    with pytest.raises(FaceApiError) as missing:
        server.require_groups(APP, ["never_made"])
    assert missing.value.error == ErrorCode.GROUP_NOT_EXIST
