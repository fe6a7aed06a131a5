"""The PostgreSQL store against a real server (tests/postgres_cluster.py): the SQLite store's
semantics and codes, races between nodes, migrations applied once, and a served request through it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest

from renlian.auth.apps import new_app, with_new_secret
from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import FaceChanges
from renlian.store.postgres import MIGRATIONS, PostgresStore, masked
from renlian.store.postgres_apps import PostgresAppStore
from renlian.store.sqlite import SQLiteStore
from tests.conftest import b64, start_server
from tests.postgres_cluster import Cluster
from tests.store import test_sqlite as sqlite_tests
from tests.store.test_sqlite import enrol, face

ADD = "/rest/2.0/face/v2/faceset/user/add"
IDENTIFY = "/rest/2.0/face/v2/identify"


@pytest.fixture
def store(database_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(database_url, pool_size=4)
    yield opened
    opened.close()


def count(url: str, table: str) -> int:
    with psycopg.connect(url) as connection:
        (rows,) = connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone() or (0,)
        return int(rows)


@pytest.mark.parametrize(
    "check",
    [
        sqlite_tests.test_a_failed_write_leaves_nothing_behind,
        sqlite_tests.test_group_capacity_is_enforced,
        sqlite_tests.test_apps_never_see_each_other,
        sqlite_tests.test_stale_crops_and_reembedding,
    ],
    ids=lambda check: check.__name__,
)
def test_the_sqlite_store_tests_pass_on_postgresql(
    check: Callable[[Any], None], store: PostgresStore
) -> None:
    check(store)


def _script(store: Any) -> list[object]:
    """Every write and read of the face store, with what each answered (codes for errors)."""
    answers: list[object] = []

    def run(call: Callable[[], object]) -> None:
        try:
            result = call()
        except FaceApiError as exc:
            answers.append(exc.error.code)
            return
        if isinstance(result, FaceChanges):
            result = (
                [(f.app_id, f.group_id, f.uid, f.model) for f in result.added],
                len(result.removed),
                result.sequence,
            )
        answers.append(result)

    one, two = face(1), face(2)
    run(
        lambda: store.enrol(
            "a", "u", "x", ["g", "h"], [one], replace=False, require_existing=False, max_group_faces=5
        )
    )
    run(
        lambda: store.enrol(
            "a", "u", None, ["g"], [one], replace=False, require_existing=False, max_group_faces=5
        )
    )
    run(
        lambda: store.enrol(
            "a",
            "v",
            "y",
            ["g"],
            [one],
            replace=False,
            require_existing=False,
            max_group_faces=5,
            unique_in_group=True,
        )
    )
    run(
        lambda: store.enrol(
            "a", "w", None, ["g"], [two], replace=False, require_existing=True, max_group_faces=5
        )
    )
    run(
        lambda: store.enrol(
            "a", "u", "z", ["g"], [two], replace=True, require_existing=True, max_group_faces=5
        )
    )
    run(lambda: store.user("a", "u"))
    run(lambda: store.user_info("a", "g", "u"))
    run(lambda: store.copy_user("a", "u", "g", ["k"], 5))
    run(lambda: store.copy_user("a", "u", "g", ["k"], 5))
    run(lambda: store.copy_user("a", "u", "g", ["m"], 5, targets_must_exist=True))
    run(lambda: store.copy_user("a", "nobody", "g", ["n"], 5))
    run(lambda: store.add_group("a", "empty"))
    run(lambda: store.add_group("a", "empty"))
    run(lambda: store.registered_groups("a", 0, 10))
    run(lambda: store.groups("a", 0, 10))
    run(lambda: store.group_users("a", "g", 0, 10))
    run(lambda: [sha for sha, _ in store.user_faces("a", "k", "u")])
    run(lambda: store.crop_by_token("a", "sha2"))
    run(lambda: store.crop_by_token("a", "sha1"))
    run(lambda: store.has_face("a", "k", "u", "sha2"))
    run(lambda: store.delete_face("a", "k", "u", "sha9"))
    run(lambda: store.delete_face("a", "nogroup", "u", "sha2"))
    run(lambda: store.delete_face("a", "k", "nobody", "sha2"))
    run(lambda: store.delete_face("a", "k", "u", "sha2"))
    run(lambda: store.user("a", "u"))
    run(lambda: store.remove_from_groups("a", "u", ["g", "h"]))
    run(lambda: store.remove_from_groups("a", "u", ["zz"]))
    run(lambda: store.remove_from_groups("a", "u", ["g"]))
    run(lambda: store.delete_group("a", "nogroup"))
    run(lambda: store.delete_group("a", "empty"))
    run(lambda: store.delete_user("a", "u", ["zz"]))
    run(lambda: store.delete_user("a", "u", None))
    run(lambda: (store.group_has_users("a", "g"), store.group_registered("a", "g"), store.count_stale("mbf")))
    run(lambda: sorted(store.group_sizes("mbf")))
    run(lambda: (store.feed_state().numbers, [c.sequence for c in store.changes_since("a", 0)]))
    return answers


def test_every_operation_answers_as_sqlite_does(store: PostgresStore, tmp_path: Path) -> None:
    sqlite_store = SQLiteStore(tmp_path / "store.sqlite3")
    expected = _script(sqlite_store)
    sqlite_store.close()
    assert _script(store) == expected


def test_crops_are_kept_once_and_dropped_with_their_last_face(
    store: PostgresStore, database_url: str
) -> None:
    enrol(store, "a", "u1", ["g", "h"], face(1))
    assert count(database_url, "crops") == 1
    store.delete_user("a", "u1", ["g"])
    assert count(database_url, "crops") == 1
    store.delete_user("a", "u1", None)
    assert count(database_url, "crops") == 0


def test_every_write_is_numbered_and_logged(store: PostgresStore) -> None:
    assert store.snapshot_dir() is None  # no index directory given: the index keeps no files
    added = store.enrol(
        "a", "u", "", ["g"], [face(1)], replace=False, require_existing=False, max_group_faces=9
    )
    store.add_group("a", "empty")  # numbered too, though it moves no face
    store.set_embedding(added.added[0].face_id, "sface", np.ones(8, np.float32))
    removed = store.delete_user("a", "u", None)
    assert (added.sequence, removed.sequence) == (1, 4)
    state = store.feed_state()
    assert state.numbers == {"a": 4} and state.pruned == {"a": 0} and len(state.epoch) == 32
    logged = store.changes_since("a", 0)
    assert [changes.sequence for changes in logged] == [1, 2, 3, 4]
    assert logged[0].added == [] and logged[3].removed == removed.removed  # the face is gone since
    assert store.prune_changes(0, 2) == 2  # whole changes, the last two kept
    assert [changes.sequence for changes in store.changes_since("a", 0)] == [3, 4]
    assert store.feed_state().pruned == {"a": 2}


@pytest.mark.parametrize("operation", ["enrol", "copy", "delete"])
def test_a_write_whose_commit_answer_was_lost_is_answered_as_the_write_it_was(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """The commit lands, the connection drops before its answer: the store tries the write again,
    which finds its request id and answers with the change that committed, not 216616 or 216611."""
    enrol(store, "a", "u", ["g"], face(1))
    commit = psycopg.Transaction.__exit__
    lost: list[bool] = []

    def answer_lost(self: psycopg.Transaction, *exc: Any) -> Any:
        result = commit(self, *exc)
        if exc[0] is None and not lost:
            lost.append(True)
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return result

    monkeypatch.setattr(psycopg.Transaction, "__exit__", answer_lost)
    if operation == "enrol":
        changes = store.enrol(
            "a", "u", None, ["g"], [face(2)], replace=False, require_existing=False, max_group_faces=9
        )
        assert [added.uid for added in changes.added] == ["u"] and changes.removed == []
    elif operation == "copy":
        changes = store.copy_user("a", "u", "g", ["h"], 9)
        assert [(added.group_id, added.uid) for added in changes.added] == [("h", "u")]
    else:
        changes = store.delete_user("a", "u", None)
        assert len(changes.removed) == 1
    assert lost == [True]  # the fault did happen
    monkeypatch.undo()
    assert changes.sequence == store.feed_state().numbers["a"] == 2  # committed once
    [logged] = store.changes_since("a", 1)
    assert [face.face_id for face in logged.added] == [face.face_id for face in changes.added]
    assert logged.removed == changes.removed


def test_reopening_keeps_everything_and_a_newer_schema_is_refused(
    store: PostgresStore, database_url: str
) -> None:
    enrol(store, "a", "u1", ["g"], face(1), face(2))
    store.close()
    again = PostgresStore(database_url)
    stored = list(again.faces())
    assert [f.uid for f in stored] == ["u1", "u1"]
    assert np.allclose(stored[0].embedding, face(1).embedding)
    again.close()
    with psycopg.connect(database_url) as connection:
        connection.execute("INSERT INTO schema_version (version) VALUES (%s)", (len(MIGRATIONS) + 1,))
    with pytest.raises(RuntimeError, match="newer"):
        PostgresStore(database_url)


def test_nodes_starting_together_apply_each_migration_once(database_url: str) -> None:
    barrier = threading.Barrier(6)
    opened: list[PostgresStore] = []
    failures: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(PostgresStore(database_url, pool_size=1))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for node in opened:
        node.close()
    assert failures == [] and len(opened) == 6
    with psycopg.connect(database_url) as connection:
        versions = [v for (v,) in connection.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, len(MIGRATIONS) + 1))


def race(database_url: str, calls: int, write: Callable[[PostgresStore, int], object]) -> list[int]:
    """`calls` writes at once from two nodes (stores with pools of their own); each one's code (0: ok)."""
    nodes = [PostgresStore(database_url, pool_size=calls), PostgresStore(database_url, pool_size=calls)]
    barrier = threading.Barrier(calls)
    codes: list[int] = []

    def one(number: int) -> None:
        barrier.wait()
        try:
            write(nodes[number % 2], number)
            codes.append(0)
        except FaceApiError as exc:
            codes.append(exc.error.code)

    threads = [threading.Thread(target=one, args=(n,)) for n in range(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for node in nodes:
        node.close()
    return sorted(codes)


def test_races_between_nodes_end_in_the_codes_sqlite_gives(database_url: str) -> None:
    def same_photo(node: PostgresStore, _: int) -> None:
        enrol(node, "a", "u", ["g"], face(1))

    assert race(database_url, 6, same_photo) == [0] + [ErrorCode.IMAGE_EXISTED.code] * 5

    def fill_group(node: PostgresStore, number: int) -> None:
        enrol(node, "a", f"v{number}", ["full"], face(10 + number), max_faces=3)

    assert race(database_url, 6, fill_group) == [0] * 3 + [ErrorCode.FAIL_TO_ADD_USER.code] * 3

    def same_group(node: PostgresStore, _: int) -> None:
        node.add_group("a", "new")

    assert race(database_url, 6, same_group) == [0] + [ErrorCode.GROUP_EXISTS.code] * 5

    def same_delete(node: PostgresStore, _: int) -> None:
        node.delete_user("a", "u", None)

    assert race(database_url, 6, same_delete) == [0] + [ErrorCode.USER_NOT_EXIST.code] * 5

    source = PostgresStore(database_url, pool_size=1)
    enrol(source, "a", "c", ["src"], face(30))
    source.close()

    def copies(node: PostgresStore, _: int) -> None:
        node.copy_user("a", "c", "src", ["copy"], 10)

    assert race(database_url, 4, copies) == [0] + [ErrorCode.USER_EXISTS.code] * 3


def test_a_lost_connection_is_retried_and_other_failures_are_216300(
    store: PostgresStore, database_url: str
) -> None:
    def drop_connections() -> None:
        with psycopg.connect(database_url) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    enrol(store, "a", "u", ["g"], face(1))
    drop_connections()
    enrol(store, "a", "u", ["g"], face(2))  # the first try meets the dead connection; the retry writes
    assert len(store.user_faces("a", "g", "u")) == 2
    drop_connections()
    assert len(store.user_faces("a", "g", "u")) == 2  # a read too: reads have no side effect
    with pytest.raises(FaceApiError) as caught:
        store.enrol(
            "a", "bad\x00uid", "", ["g"], [face(3)], replace=False, require_existing=False, max_group_faces=9
        )
    assert caught.value.error is ErrorCode.DB_ERROR and "bad" not in str(caught.value)


def test_the_store_answers_again_as_soon_as_the_database_is_back(
    database_url: str, postgres_cluster: Cluster
) -> None:
    """An outage of 9 s with requests arriving throughout, as on a busy node: the pool's retries back
    off to several seconds apart by then. Once the server is back, the first or second read
    succeeds (each waits at most the store's 1 s timeout for a connection); with the pool's default
    backoff every read failed for seconds (4.3 s after a 10 s outage), and a search behind one of
    them waited for the app's lock and was refused."""
    store = PostgresStore(database_url, pool_size=2, timeout=1.0)
    try:
        assert store.sequence("a") == 0
        postgres_cluster.stop_server()
        try:
            ends = time.monotonic() + 9
            while time.monotonic() < ends:
                with pytest.raises(FaceApiError):
                    store.sequence("a")
                time.sleep(0.2)
        finally:
            postgres_cluster.start_server()
        failed = 0
        while True:
            try:
                assert store.sequence("a") == 0
                break
            except FaceApiError:
                failed += 1
                assert failed < 2, "the store still fails twice after the database is back"
    finally:
        store.close()


def test_apps_tokens_and_usage(store: PostgresStore) -> None:
    apps = PostgresAppStore(store)
    app = new_app("one", brain_all_scope=True)
    apps.create_app(app)
    assert apps.app(app.app_id) == app and apps.app_by_key(app.api_key) == app and apps.apps() == [app]
    # Token rows as renlian wrote them before its tokens were MACs; the long-expired one is purged.
    store.write(
        lambda db: db.execute(
            "INSERT INTO tokens (token_sha256, app_id, kind, expires_at) VALUES (%s, %s, %s, %s), "
            "(%s, %s, %s, %s)",
            ("t1", app.app_id, "access", 2**40, "t0", app.app_id, "access", 1),
        )
    )
    assert apps.purge_tokens() == 1 and apps.token("t0", "access") is None
    assert apps.token("t1", "access") == (app.app_id, 2**40) and apps.token("t1", "other") is None
    apps.update_app(replace(app, qps_limit=3, closed=frozenset({"match"})))
    assert apps.token("t1", "access") is not None and apps.app(app.app_id) == replace(
        app, qps_limit=3, closed=frozenset({"match"})
    )
    apps.update_app(with_new_secret(app))
    assert apps.token("t1", "access") is None  # a new secret revokes the tokens
    apps.add_usage({(app.app_id, "2026-01-01"): 2, (app.app_id, "2026-01-02"): 5})
    apps.add_usage({(app.app_id, "2026-01-02"): 1}, "flush-1")
    # The same flush again (its commit's answer was lost and it is retried): counted once.
    apps.add_usage({(app.app_id, "2026-01-02"): 1}, "flush-1")
    assert apps.usage(app.app_id, "2026-01-02") == (6, 8)
    enrol(store, app.app_id, "u", ["g"], face(1))
    apps.delete_app(app.app_id)
    assert apps.apps() == [] and list(store.faces()) == [] and apps.usage(app.app_id, "2026-01-02") == (0, 0)


def test_the_password_never_shows(postgres_cluster: Cluster) -> None:
    assert masked("postgresql://renlian:s3cret@db:5432/faces") == "postgresql://renlian:***@db:5432/faces"
    assert masked("postgresql://renlian@db/faces") == "postgresql://renlian@db/faces"
    with pytest.raises(FaceApiError) as caught:
        PostgresStore(f"postgresql://postgres:s3cret@127.0.0.1:{postgres_cluster.port}/nowhere", timeout=1)
    assert caught.value.error is ErrorCode.DB_ERROR
    assert "cannot connect to postgresql://postgres:***@" in str(caught.value) and "s3cret" not in str(
        caught.value
    )


def test_a_server_enrols_and_identifies_through_postgresql(
    tmp_path: Path, database_url: str, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    env = {"RENLIAN_DATABASE_URL": database_url}
    created = subprocess.run(
        [sys.executable, "-m", "renlian.cli", "apps", "create", "pg", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**__import__("os").environ, **env},
    )

    server = start_server(tmp_path, extra_env=env, app=json.loads(created.stdout))
    try:
        for uid, image in (("astronaut", astronaut), ("hopper", hopper)):
            body = server.call(
                "/rest/2.0/face/v2/faceset/user/add", uid=uid, user_info=uid, group_id="pg", image=b64(image)
            )
            assert "error_code" not in body, body
        hit = server.call(IDENTIFY, group_id="pg", image=b64(hopper))["result"][0]
        assert hit["uid"] == "hopper" and hit["scores"][0] > 90
    finally:
        server.stop()
    assert count(database_url, "faces") == 2 and count(database_url, "apps") == 1
    assert not (tmp_path / "data" / "renlian.sqlite3").exists()
