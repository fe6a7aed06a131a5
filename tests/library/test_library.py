"""The face library's writes under concurrency: the in-memory index never disagrees with the store.

The analyzer is the real one (the library reads its embedder's name and size), the store is a real
SQLite file; the faces are made-up unit vectors, so thousands of writes take seconds, not minutes.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import numpy as np
import pytest

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import FaceLibrary
from renlian.store.base import NewFace
from renlian.store.sqlite import SQLiteStore
from renlian.vision.analyzer import FaceAnalyzer

APP = "app"
GROUPS = ["g1", "g2", "g3"]
UIDS = ["u0", "u1", "u2"]
# Outcomes a racing write may meet, each a consequence of another thread's write, never a defect.
EXPECTED = {
    ErrorCode.USER_NOT_EXIST,
    ErrorCode.IMAGE_EXISTED,
    ErrorCode.USER_EXISTS,  # group/adduser into a group the user is already in: "already add"
    ErrorCode.USER_MUST_BE_IN_ONE_GROUP,
}


def new_face(library: FaceLibrary, rng: np.random.Generator, serial: int) -> NewFace:
    vector = rng.standard_normal(library.index.dim).astype(np.float32)
    return NewFace(f"photo{serial}", library.index.model, vector / np.linalg.norm(vector), b"crop")


def store_contents(store: SQLiteStore, model: str) -> dict[tuple[str, str], dict[int, str]]:
    found: dict[tuple[str, str], dict[int, str]] = {}
    for app_id, group_id, face_id, uid, _ in store.embeddings(model):
        found.setdefault((app_id, group_id), {})[face_id] = uid
    return found


def race(library: FaceLibrary, threads: int, operations: int) -> list[FaceApiError]:
    """`threads` threads each run `operations` random writes on the same few users."""
    unexpected: list[FaceApiError] = []
    serial = iter(range(10**9))
    serial_lock = threading.Lock()

    def worker(seed: int) -> None:
        rng = np.random.default_rng(seed)
        pick = random.Random(seed)
        for _ in range(operations):
            uid = pick.choice(UIDS)
            groups = pick.sample(GROUPS, pick.randint(1, 2))
            with serial_lock:
                number = next(serial)
            try:
                match pick.randrange(6):
                    case 0 | 1:
                        faces = [new_face(library, rng, number)]
                        library.add(APP, uid, uid, groups, faces, replace=False, require_existing=False)
                    case 2:
                        faces = [new_face(library, rng, number), new_face(library, rng, number + 10**9)]
                        library.add(APP, uid, uid, groups, faces, replace=True, require_existing=False)
                    case 3:
                        library.delete(APP, uid, None if pick.random() < 0.5 else groups)
                    case 4:
                        library.copy(APP, uid, groups[0], [g for g in GROUPS if g != groups[0]][:1])
                    case _:
                        library.remove_from_groups(APP, uid, groups[:1])
            except FaceApiError as exc:
                if exc.error not in EXPECTED:
                    unexpected.append(exc)

    pool = [threading.Thread(target=worker, args=(seed,)) for seed in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return unexpected


def test_racing_writes_leave_the_index_equal_to_the_store(tmp_path: Path, analyzer: FaceAnalyzer) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3")
    library = FaceLibrary(store, analyzer)
    unexpected = race(library, threads=8, operations=600)
    assert unexpected == []
    in_store = store_contents(store, library.index.model)
    assert in_store, "the race should leave some faces enrolled"
    assert library.index.contents() == in_store
    # What a restart would load is the same again.
    assert FaceLibrary(store, analyzer).index.contents() == in_store
    # A user the store no longer holds is not found by verify's search.
    query = np.ones(library.index.dim, np.float32) / np.sqrt(library.index.dim)
    for group in GROUPS:
        index = library.index.group(APP, group)
        held = set(in_store.get((APP, group), {}).values())
        for uid in UIDS:
            scores = index.user_scores(query, uid) if index is not None else []
            assert bool(scores) == (uid in held), (group, uid)
    store.close()


def test_adduser_honours_the_group_capacity(tmp_path: Path, analyzer: FaceAnalyzer) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3")
    library = FaceLibrary(store, analyzer, max_group_faces=3)
    rng = np.random.default_rng(1)
    two = [new_face(library, rng, 1), new_face(library, rng, 2)]
    library.add(APP, "big", "", ["g1"], two, replace=False, require_existing=False)
    library.add(APP, "small", "", ["g2"], [new_face(library, rng, 3)], replace=False, require_existing=False)
    library.copy(APP, "small", "g2", ["g1"])  # 3 faces: at capacity, allowed
    library.add(APP, "other", "", ["g3"], [new_face(library, rng, 4)], replace=False, require_existing=False)
    with pytest.raises(FaceApiError) as refused:
        library.copy(APP, "other", "g3", ["g1"])
    assert refused.value.error is ErrorCode.FAIL_TO_ADD_USER
    assert sorted(len(rows) for rows in library.index.contents().values()) == [1, 1, 3]
    assert [record.group_id for record in library.user(APP, "other")] == ["g3"]
    store.close()


def test_search_embeddings_answers_each_probe_across_groups(tmp_path: Path, analyzer: FaceAnalyzer) -> None:
    store = SQLiteStore(tmp_path / "store.sqlite3")
    library = FaceLibrary(store, analyzer)
    rng = np.random.default_rng(5)
    faces = [new_face(library, rng, serial) for serial in range(12)]
    for serial, face in enumerate(faces):
        group = GROUPS[serial % 2]
        library.add(
            APP, f"u{serial % 5}", f"info{serial % 5}", [group], [face], replace=False, require_existing=False
        )
    queries = np.stack([faces[3].embedding, faces[8].embedding, -faces[0].embedding]).astype(np.float32)
    found = library.search_embeddings(APP, ["g1", "g2", "nowhere"], queries, users=3)
    assert not library.group_exists_in_index(APP, "nowhere") and library.group_exists_in_index(APP, "g1")
    assert [hits[0].uid for hits in found[:2]] == ["u3", "u3"]
    assert (found[0][0].group_id, found[1][0].group_id, found[0][0].user_info) == ("g2", "g1", "info3")
    for query, hits in zip(queries, found, strict=True):
        alone = library.search_embeddings(APP, ["g1", "g2"], query[None, :], users=3)[0]
        assert hits == alone and len(hits) == 3
        # Across groups, best first; each record's scores are its own faces' scores in that group.
        assert [hit.scores[0] for hit in hits] == sorted((hit.scores[0] for hit in hits), reverse=True)
        for hit in hits:
            index = library.index.group(APP, hit.group_id)
            assert index is not None and hit.scores == index.user_scores(query, hit.uid)[:5]
    only = library.search_embeddings(
        APP, ["g1", "g2"], queries[:1], users=5, faces_per_user=1, only_uid="u1"
    )[0]
    assert {hit.group_id for hit in only} == {"g1", "g2"} and all(hit.uid == "u1" for hit in only)
    assert all(len(hit.scores) == 1 for hit in only)
    library.close()
    store.close()
