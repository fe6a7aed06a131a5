"""The face library stays consistent under random writes, searches, imports and faults (issue 20,
item 8): a model-based test against real server processes.

Each test runs one seed of tests/consistency_harness.py: 40 random operations (v3 user/add, update,
delete, copy, group/add, group/delete, face/delete; v2 user/add and delete; `renlian import` beside
the servers; v3 search, multi-search, v2 identify) against a plain-Python model of the library
(tests/consistency_model.py), with two faults injected, every answer checked against the model and
every acknowledged write checked on every node. A failure names the property, the seed, the step
and the last operations; RENLIAN_TEST_SEED=<seed> replays it (this file runs that seed and the
next), and `python -m bench.consistency` runs the long version.

A seed whose only violations are listed in KNOWN_FAILURES (by kind and endpoint: what today's code is known
to break) is an expected failure; any other violation fails. The unit test at the end shows that
the comparisons can fail: each kind of wrong answer is caught.
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from renlian.vision.analyzer import FaceAnalyzer
from tests.consistency_harness import Deployment, Options, Scenario, start_fleet, start_sqlite
from tests.consistency_model import (
    V2_NO_USER_IN_GROUP,
    V3_MATCH_USER_NOT_FOUND,
    Answer,
    FacePool,
    History,
    Hit,
    Photo,
    Query,
    State,
    User,
    changed_faces,
    compare,
    expect,
    scorer,
)
from tests.postgres_cluster import Cluster

# One seed per run unless replaying: a different sequence every run finds more over time, and the
# failure message prints the seed.
SEED = int(os.environ.get("RENLIAN_TEST_SEED") or random.SystemRandom().randrange(1, 1_000_000))
SEEDS = (SEED, SEED + 1)
STEPS = 40
# The fault kinds of each seed: the two seeds of a deployment together cover every kind it has
# (the four on the fleet; kill -9, a clean restart and a full disk on SQLite), two per seed
# to keep the file within its CI budget (bench/consistency.py mixes them all, more per seed).
FLEET_FAULTS = (("kill9", "stall"), ("pg-stop", "rows-full"))
SQLITE_FAULTS = (("kill9", "rows-full"), ("restart", "rows-full"))
POOL_SIZE = 32

_pools: dict[int, FacePool] = {}


def pool_for(seed: int, analyzer: FaceAnalyzer) -> FacePool:
    """The seed's augmented faces, made once per session (both deployments run the same seeds)."""
    if seed not in _pools:
        _pools[seed] = FacePool(seed, analyzer, size=POOL_SIZE, composites=4)
    return _pools[seed]


@pytest.fixture(scope="module")
def fleet(postgres_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    running = start_fleet(postgres_cluster, tmp_path_factory.mktemp("consistency-fleet"))
    yield running
    running.close()


@pytest.fixture(scope="module")
def sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    running = start_sqlite(tmp_path_factory.mktemp("consistency-sqlite"))
    yield running
    running.close()


# Properties today's code is known to break, by (kind, endpoint), with why: a seed whose only
# violations are these is reported as an expected failure, any other violation fails the test.
# Delete an entry once its fix lands.
KNOWN_FAILURES: dict[tuple[str, str], str] = {}


def run_seed(
    deployment: Deployment, analyzer: FaceAnalyzer, seed: int, scratch: Path, options: Options
) -> None:
    options.pool_size = POOL_SIZE
    # Fewer probes per sweep (after each fault and at the end) than the bench: CPU in CI is short.
    options.sweep_limit = 5
    # Past a known failure the seed goes on, so that every other property is still checked.
    options.keep_going = bool(KNOWN_FAILURES)
    report = Scenario(
        seed, deployment, pool_for(seed, analyzer), analyzer.embedder.name, options, scratch
    ).run()
    replay = f"RENLIAN_TEST_SEED={SEED} .venv/bin/pytest tests/api/test_consistency.py -k {deployment.name}"
    unknown = [v for v in report.violations if (v.kind, v.subject) not in KNOWN_FAILURES]
    assert not unknown, f"replay this file's seeds with {replay}\n" + "\n\n".join(
        v.format(report.replay) for v in unknown[:3]
    )
    if report.violations:
        first = report.violations[0]
        reason = KNOWN_FAILURES[first.kind, first.subject]
        pytest.xfail(f"{reason} (seed {seed}, step {first.step}: {first.message[:300]})")


@pytest.mark.parametrize("number", [0, 1])
def test_fleet_on_postgresql_with_faults(
    fleet: Deployment, analyzer: FaceAnalyzer, tmp_path: Path, number: int
) -> None:
    # One import among the fleet's seeds: each loads the models again, a few seconds of CPU.
    options = Options(steps=STEPS, faults=2, fault_kinds=FLEET_FAULTS[number], imports=number)
    run_seed(fleet, analyzer, SEEDS[number], tmp_path, options)


@pytest.mark.parametrize("number", [0, 1])
def test_sqlite_with_a_concurrent_import_and_faults(
    sqlite: Deployment, analyzer: FaceAnalyzer, tmp_path: Path, number: int
) -> None:
    options = Options(steps=STEPS, faults=2, fault_kinds=SQLITE_FAULTS[number], imports=1)
    run_seed(sqlite, analyzer, SEEDS[number], tmp_path, options)


# The checks themselves ------------------------------------------------------------------------------


def _photo(name: str, vector: np.ndarray) -> Photo:
    unit = (vector / np.linalg.norm(vector)).astype(np.float32)
    return Photo(name, name.encode(), hashlib.sha256(name.encode()).hexdigest(), (unit,))


def test_the_checks_catch_each_kind_of_wrong_answer() -> None:
    """A check that cannot fail is no check: every kind of wrong answer is reported, and what the
    tolerance allows (float noise, near-ties in either order) is not."""
    rng = np.random.default_rng(0)
    base = rng.normal(size=512)
    photos = [_photo(f"p{n}", base + rng.normal(size=512) * (0.6 + 0.3 * n)) for n in range(4)]
    state = State({"g": {f"u{n}": User(f"i{n}", (photos[n],)) for n in range(4)}})
    score = scorer("mbf")
    query = Query("v2-identify", ("g",), photos[0], limit=3)
    expected = expect(state, query, score)
    best = expected.faces[0]
    exact = Answer(0, (best[:3],))
    assert compare(exact, expected) == []
    noisy = Answer(
        0,
        (
            tuple(
                Hit(h.group, h.uid, h.info, h.score + 0.01, tuple(s + 0.01 for s in h.faces))
                for h in best[:3]
            ),
        ),
    )
    assert compare(noisy, expected) == []

    missing = Answer(0, (best[:2],))
    extra = Answer(0, ((*best[:3], Hit("g", "stranger", "", 50.0, (50.0,))),))
    off = Answer(
        0, ((Hit(best[0].group, best[0].uid, best[0].info, best[0].score - 0.2, best[0].faces), *best[1:3]),)
    )
    swapped = Answer(0, ((best[1], best[0], best[2]),))
    wrong_info = Answer(
        0, ((Hit(best[0].group, best[0].uid, "other", best[0].score, best[0].faces), *best[1:3]),)
    )
    skipped = Answer(0, ((best[0], best[1], best[3]),))
    refused = Answer(V2_NO_USER_IN_GROUP)
    for wrong in (missing, extra, off, swapped, skipped, refused):
        assert compare(wrong, expected), wrong.describe()

    def info_ok(group: str, uid: str, info: str) -> bool:
        user = state.user(group, uid)
        return user is not None and user.info == info

    assert compare(exact, expected, info_ok=info_ok) == []
    assert compare(wrong_info, expected, info_ok=info_ok)

    # A near-tie may come in either order; a face-level score list must match too.
    tied = State({"g": {"a": User("", (photos[1],)), "b": User("", (photos[1],))}})
    tie = expect(tied, Query("v2-identify", ("g",), photos[1], limit=1), score)
    for uid in ("a", "b"):
        assert (
            compare(Answer(0, ((Hit("g", uid, "", tie.faces[0][0].score, tie.faces[0][0].faces),),)), tie)
            == []
        )
    two_faces = State({"g": {"a": User("", (photos[0], photos[1]))}})
    faces = expect(two_faces, Query("v2-identify", ("g",), photos[0], limit=1), score)
    one_face = faces.faces[0][0]
    assert compare(Answer(0, ((Hit("g", "a", "", one_face.score, one_face.faces[:1]),),)), faces)

    # v3 search: "no match" is wrong while somebody reaches the threshold; an empty group is 216618 in v2.
    stranger = _photo("stranger", rng.normal(size=512))
    nobody = expect(state, Query("v3-search", ("g",), stranger, limit=2, threshold=80.0), score)
    assert compare(Answer(V3_MATCH_USER_NOT_FOUND), nobody) == []
    somebody = expect(state, Query("v3-search", ("g",), photos[0], limit=2, threshold=80.0), score)
    assert compare(Answer(V3_MATCH_USER_NOT_FOUND), somebody)
    empty = State({"g": {}})
    assert compare(Answer(0, ((),)), expect(empty, query, score))
    # ...and an empty success is what identify answers if it checks the group on one state and
    # searches another: the harness reports that as a mixed read.
    assert compare(Answer(0, ((),)), expect(state, query, score))
    assert compare(Answer(0, ((),)), expect(empty, query, score, gate=state)) == []

    # A stale answer is classified by what the missed writes did: faces they removed (a deleted face
    # returned) or added (an acknowledged face not visible).
    added, removed = changed_faces(state, empty, ["g"])
    assert (added, len(removed)) == (set(), 4)
    assert changed_faces(empty, state, ["g"])[0] == removed

    # The freshness window: a version superseded longer ago than the promise is no longer allowed.
    history = History()
    history.commit(state, 10.0, "add")
    history.commit(empty, 20.0, "delete")
    assert history.current_at(19.9) == 1
    assert history.current_at(20.0) == 2
