"""Exact search: the index answers exactly what brute force over the same rows answers."""

from __future__ import annotations

import numpy as np
import pytest

from renlian.library import index as index_module
from renlian.library.index import FaceIndex, GroupIndex
from renlian.store.base import FaceChanges, StoredFace


def unit(rng: np.random.Generator, n: int, dim: int = 32) -> np.ndarray:
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def test_search_matches_brute_force_after_adds_and_removes() -> None:
    rng = np.random.default_rng(0)
    vectors = unit(rng, 500)
    owners = [f"u{i % 120}" for i in range(500)]
    index = GroupIndex(32)
    for face_id, (uid, vector) in enumerate(zip(owners, vectors, strict=True)):
        index.add(face_id, uid, vector)
    removed = set(rng.choice(500, 150, replace=False).tolist())
    for face_id in removed:
        index.remove(face_id)
    index.remove(10_000)  # unknown ids are ignored
    assert len(index) == 350
    for query in unit(rng, 20):
        best: dict[str, list[float]] = {}
        for face_id in np.argsort(-(vectors @ query)):
            if int(face_id) not in removed:
                best.setdefault(owners[face_id], []).append(float(vectors[face_id] @ query))
        expected = sorted(best.items(), key=lambda item: -item[1][0])[:5]
        hits = index.search(query, users=5, faces_per_user=3)
        assert [hit.uid for hit in hits] == [uid for uid, _ in expected]
        for hit, (_, scores) in zip(hits, expected, strict=True):
            assert np.allclose(hit.scores, scores[:3], atol=1e-5)
        some_user = owners[int(rng.integers(500))]
        assert np.allclose(index.user_scores(query, some_user), best.get(some_user, []), atol=1e-5)


def test_one_prolific_user_cannot_hide_the_others() -> None:
    rng = np.random.default_rng(1)
    query = unit(rng, 1)[0]
    index = GroupIndex(32)
    for face_id in range(300):  # 300 near-copies of the query, all one user's
        index.add(face_id, "many", (query + 0.01 * unit(rng, 1)[0]).astype(np.float32))
    index.add(1000, "other", unit(rng, 1)[0])
    assert [hit.uid for hit in index.search(query, users=2, faces_per_user=1)] == ["many", "other"]


def test_face_index_applies_changes_per_app_and_group() -> None:
    rng = np.random.default_rng(2)
    v = unit(rng, 3)
    index = FaceIndex("mbf", 32)
    added = [
        StoredFace(1, "app_a", "g", "u1", "mbf", v[0]),
        StoredFace(2, "app_b", "g", "u1", "mbf", v[1]),
        StoredFace(3, "app_a", "g", "u2", "sface", v[2]),  # another model: never searchable here
    ]
    index.apply(FaceChanges(added, []))
    group_a, group_b = index.group("app_a", "g"), index.group("app_b", "g")
    assert group_a is not None and group_b is not None
    assert len(group_a) == 1 and len(group_b) == 1
    index.apply(FaceChanges([], [("app_a", "g", 1)]))
    assert len(group_a) == 0 and len(group_b) == 1 and index.face_count() == 1


@pytest.mark.parametrize("block", [7, 4096])
def test_bulk_load_answers_like_one_by_one_adds(block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "LOAD_BLOCK", block)
    rng = np.random.default_rng(3)
    vectors = unit(rng, 300)
    rows = [("app", f"g{i % 2}", i, f"u{i % 50}", vectors[i].astype("<f4").tobytes()) for i in range(300)]
    loaded = FaceIndex("mbf", 32)
    assert loaded.load(rows, {("app", "g0"): 150, ("app", "g1"): 150}) == 300
    added = FaceIndex("mbf", 32)
    added.apply(FaceChanges([StoredFace(r[2], r[0], r[1], r[3], "mbf", vectors[r[2]]) for r in rows], []))
    for query in unit(rng, 5):
        for group in ("g0", "g1"):
            a, b = loaded.group("app", group), added.group("app", group)
            assert a is not None and b is not None
            assert a.search(query, 5, 2) == b.search(query, 5, 2)
    # Rows added after a bulk load land after it; removing a loaded row works.
    g0 = loaded.group("app", "g0")
    assert g0 is not None
    g0.add(1000, "late", vectors[0])
    g0.remove(0)
    assert len(g0) == 150 and g0.search(vectors[0], 1, 1)[0].uid == "late"
