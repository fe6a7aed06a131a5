"""The int8 first pass never changes an answer: search equals brute force over every row, exactly.

Brute force here scores every row with `exact_scores` and ranks users by their best face (ties by
the lower face id), which is what the index promises; the galleries are random and adversarial
(duplicates, near-duplicates, all rows nearly equal, spiky and tiny vectors, more users asked for than
the group holds), spread over many small blocks so that block edges are crossed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

from renlian.library import index as index_module
from renlian.library.bound import (
    QueryCode,
    RowCodes,
    code_query,
    code_rows,
    exact_scores,
    float32_bound,
    norm_up,
)
from renlian.library.index import GroupIndex, UserHit, shared_first_pass
from renlian.library.scan import Probes, offset_codes

Gallery = tuple[NDArray[np.float32], list[str]]


@pytest.fixture(autouse=True, params=["int8", "float32"])
def small_blocks(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Blocks of 16, 32, then 64 rows: every gallery here spans several. Each test runs twice: with
    the int8 first pass, and with every group small enough to be read whole in float32."""
    monkeypatch.setattr(index_module, "FIRST_BLOCK", 16)
    monkeypatch.setattr(index_module, "MAX_BLOCK", 64)
    monkeypatch.setattr(index_module, "DIRECT_ROWS", 0 if request.param == "int8" else 1 << 30)


def first_pass(coded: RowCodes, code: QueryCode) -> NDArray[np.float32]:
    """One probe's int8 first-pass score of every row."""
    approx, _ = shared_first_pass().scores(
        Probes([code.codes], [code.step]), offset_codes(coded.codes), coded.scale
    )
    row: NDArray[np.float32] = approx[0]
    return row


def unit(rows: NDArray[np.float64]) -> NDArray[np.float32]:
    normalised: NDArray[np.float32] = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return normalised


def brute_force(
    vectors: NDArray[np.float32],
    owners: list[str],
    face_ids: list[int],
    query: NDArray[np.float32],
    users: int,
    faces_per_user: int,
) -> list[UserHit]:
    scores = exact_scores(vectors, query)
    order = sorted(range(len(vectors)), key=lambda row: (-scores[row], face_ids[row]))
    best = list(dict.fromkeys(owners[row] for row in order))[:users]
    return [
        UserHit(
            uid, sorted((float(scores[r]) for r in order if owners[r] == uid), reverse=True)[:faces_per_user]
        )
        for uid in best
    ]


def build(vectors: NDArray[np.float32], owners: list[str]) -> GroupIndex:
    index = GroupIndex(vectors.shape[1])
    index.extend(list(range(len(vectors))), owners, vectors)
    return index


def random_gallery(rng: np.random.Generator, n: int, dim: int, users: int) -> Gallery:
    return unit(rng.standard_normal((n, dim))), [f"u{rng.integers(users)}" for _ in range(n)]


def duplicates(rng: np.random.Generator, n: int, dim: int) -> Gallery:
    """Every vector three times, under three users: exact ties everywhere."""
    base = unit(rng.standard_normal((n // 3, dim)))
    vectors = np.repeat(base, 3, axis=0)
    return vectors, [f"u{i % 7}" for i in range(len(vectors))]


def near_duplicates(rng: np.random.Generator, n: int, dim: int) -> Gallery:
    """Copies of a few faces 1e-4 apart: far closer than the first pass can tell apart."""
    base = unit(rng.standard_normal((5, dim)))
    vectors = unit(base[rng.integers(5, size=n)] + 1e-4 * rng.standard_normal((n, dim)))
    return vectors, [f"u{i}" for i in range(n)]


def nearly_equal(rng: np.random.Generator, n: int, dim: int) -> Gallery:
    """All rows within 1e-3 of one another: the bound rules out nothing, every row is re-ranked."""
    base = rng.standard_normal(dim)
    vectors = unit(base + 1e-3 * rng.standard_normal((n, dim)))
    return vectors, [f"u{i % 40}" for i in range(n)]


def spiky(rng: np.random.Generator, n: int, dim: int) -> Gallery:
    """One huge coordinate per row: the int8 scale is coarse for all the others."""
    vectors = rng.standard_normal((n, dim)) * 0.01
    vectors[np.arange(n), rng.integers(dim, size=n)] = 1.0
    return unit(vectors), [f"u{i % 50}" for i in range(n)]


def mixed_magnitudes(rng: np.random.Generator, n: int, dim: int) -> Gallery:
    """Not unit length: large, small, tiny (below the coding floor) and zero rows."""
    vectors = rng.standard_normal((n, dim)) * rng.choice([1e3, 1.0, 1e-3, 1e-13, 0.0], size=(n, 1))
    return vectors.astype(np.float32), [f"u{i % 30}" for i in range(n)]


def few_users(rng: np.random.Generator, n: int, dim: int) -> Gallery:
    """Three users with a hundred faces each, near copies of one another: fewer users than asked
    for, and users whose best faces are found among many."""
    base = unit(rng.standard_normal((3, dim)))
    owner = rng.integers(3, size=n)
    vectors = unit(base[owner] + 0.05 * rng.standard_normal((n, dim)))
    return vectors, [f"u{i}" for i in owner]


GALLERIES: dict[str, Callable[[np.random.Generator, int, int], Gallery]] = {
    "few_users": few_users,
    "random": lambda rng, n, dim: random_gallery(rng, n, dim, users=n // 3),
    "duplicates": duplicates,
    "near_duplicates": near_duplicates,
    "nearly_equal": nearly_equal,
    "spiky": spiky,
    "mixed_magnitudes": mixed_magnitudes,
}


def probes(rng: np.random.Generator, vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    """Random probes, gallery rows themselves, noisy copies of them, and their negatives."""
    dim = vectors.shape[1]
    rows = vectors[rng.integers(len(vectors), size=3)]
    noisy = rows + 0.05 * rng.standard_normal(rows.shape).astype(np.float32)
    return np.concatenate([unit(rng.standard_normal((3, dim))), rows, noisy, -rows]).astype(np.float32)


@pytest.mark.parametrize("kind", sorted(GALLERIES))
@pytest.mark.parametrize("dim", [32, 128])
def test_search_equals_brute_force(kind: str, dim: int) -> None:
    rng = np.random.default_rng([dim, len(kind)])
    vectors, owners = GALLERIES[kind](rng, 301, dim)
    index = build(vectors, owners)
    face_ids = list(range(len(vectors)))
    queries = probes(rng, vectors)
    for users, faces_per_user in [(1, 1), (5, 3), (20, 5), (1000, 2)]:  # the last: more than the group holds
        many = index.search_many(queries, users, faces_per_user)
        for query, found in zip(queries, many, strict=True):
            assert found == brute_force(vectors, owners, face_ids, query, users, faces_per_user)
            assert index.search(query, users, faces_per_user) == found


def test_search_equals_brute_force_after_adds_and_removes() -> None:
    rng = np.random.default_rng(7)
    vectors, owners = near_duplicates(rng, 400, 64)
    index = GroupIndex(64)
    for face_id in range(400):
        index.add(face_id, owners[face_id], vectors[face_id])
    removed = set(rng.choice(400, 170, replace=False).tolist())
    for face_id in sorted(removed):
        index.remove(face_id)
    index.add(5000, "late", vectors[3])  # an exact copy of a kept or removed row
    kept = [i for i in range(400) if i not in removed]
    all_vectors = np.concatenate([vectors[kept], vectors[3:4]])
    all_owners = [owners[i] for i in kept] + ["late"]
    face_ids = [*kept, 5000]
    assert len(index) == len(face_ids)
    for query in probes(rng, vectors):
        assert index.search(query, 7, 3) == brute_force(all_vectors, all_owners, face_ids, query, 7, 3)
        for uid in ("late", owners[kept[0]]):
            mine = [r for r, owner in enumerate(all_owners) if owner == uid]
            expected = sorted(exact_scores(all_vectors[mine], query).tolist(), reverse=True)
            assert index.user_scores(query, uid) == expected


@pytest.mark.parametrize("kind", sorted(GALLERIES))
def test_first_pass_stays_within_the_bound(kind: str) -> None:
    """The invariant every answer rests on, checked row by row, not only through the rankings."""
    rng = np.random.default_rng(len(kind))
    vectors, _ = GALLERIES[kind](rng, 500, 512)
    coded = code_rows(vectors)
    for query in probes(rng, vectors):
        code = code_query(query)
        approx = first_pass(coded, code)
        error = np.abs(exact_scores(vectors, query) - approx.astype(np.float64))
        bound = code.bound(coded.norm, coded.residual)
        assert np.all(error <= bound)
        # Not vacuous: for unit rows the bound is a few hundredths, not the whole range of scores.
        if kind in {"random", "near_duplicates", "nearly_equal"}:
            assert float(bound.max()) < 0.05


@pytest.mark.parametrize("kind", sorted(GALLERIES))
def test_float32_product_stays_within_its_bound(kind: str) -> None:
    """A small group's first pass (its float32 rows times the probe, by BLAS) row by row against
    the exact scores; the bound is tight enough to rule out nearly every row."""
    rng = np.random.default_rng(len(kind) + 100)
    vectors, _ = GALLERIES[kind](rng, 500, 512)
    norms = code_rows(vectors).norm
    for query in probes(rng, vectors):
        approx = (query[None, :] @ vectors.T)[0]
        error = np.abs(exact_scores(vectors, query) - approx.astype(np.float64))
        bound = float32_bound(norms, norm_up(query), 512)
        assert np.all(error <= bound)
        if kind in {"random", "near_duplicates", "nearly_equal"}:
            assert float(bound.max()) < 1e-4


def test_exact_scores_are_float64_sums_independent_of_the_batch() -> None:
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((50, 100)).astype(np.float32)
    query = rng.standard_normal(100).astype(np.float32)
    together = exact_scores(vectors, query)
    alone = np.array([exact_scores(vectors[i : i + 1], query)[0] for i in range(50)])
    assert np.array_equal(together, alone)
    reference = [math.fsum(float(a) * float(b) for a, b in zip(row, query, strict=True)) for row in vectors]
    assert np.allclose(together, reference, rtol=0, atol=1e-12)


def test_one_prolific_user_cannot_hide_the_others() -> None:
    rng = np.random.default_rng(1)
    query = unit(rng.standard_normal((1, 32)))[0]
    copies = unit(query + 0.01 * rng.standard_normal((300, 32)))
    index = build(np.concatenate([copies, unit(rng.standard_normal((1, 32)))]), ["many"] * 300 + ["other"])
    assert [hit.uid for hit in index.search(query, users=2, faces_per_user=1)] == ["many", "other"]


def test_an_empty_group_finds_nothing() -> None:
    index = GroupIndex(16)
    index.add(1, "a", unit(np.ones((1, 16)))[0])
    index.remove(1)
    assert index.search_many(unit(np.ones((2, 16))), 5, 5) == [[], []]
    assert index.user_scores(unit(np.ones((1, 16)))[0], "a") == []


def test_the_bound_is_nearly_reached() -> None:
    """Probes coded without error (t b exactly) along a row's residual: the first pass then misses
    by almost ||r|| ||q||, the bound's second term. A bound cut by a tenth would be broken here, so
    the exactness tests above would catch it."""
    rng = np.random.default_rng(11)
    vectors = unit(rng.standard_normal((200, 512)))
    coded = code_rows(vectors)
    residual = vectors.astype(np.float64) - coded.scale[:, None].astype(np.float64) * coded.codes
    ratios = []
    for row in range(0, 200, 20):
        direction = residual[row] / np.abs(residual[row]).max()
        query = (np.rint(63 * direction) * 2.0**-8).astype(np.float32)  # 2^-8 b, exactly coded
        code = code_query(query)
        assert code.error == 0
        approx = first_pass(coded, code)
        error = np.abs(exact_scores(vectors, query) - approx.astype(np.float64))
        bound = code.bound(coded.norm, coded.residual)
        assert np.all(error <= bound)
        ratios.append(error[row] / bound[row])
    assert min(ratios) > 0.9


def test_first_pass_rank_flips_are_corrected() -> None:
    """Rows so alike that the first pass orders the top ones wrongly; the answer is still exact."""
    rng = np.random.default_rng(12)
    vectors, owners = nearly_equal(rng, 2000, 128)
    index = build(vectors, owners)
    coded = code_rows(vectors)
    flipped = 0
    for query in probes(rng, vectors)[:6]:
        code = code_query(query)
        approx = first_pass(coded, code)
        exact = exact_scores(vectors, query)
        flipped += int(np.argmax(approx) != np.argmax(exact))
        assert index.search(query, 3, 2) == brute_force(vectors, owners, list(range(2000)), query, 3, 2)
    assert flipped >= 3
