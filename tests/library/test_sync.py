"""Several nodes on one PostgreSQL database (library/sync.py): each node's index follows the others'
writes, in order, catches up after missed announcements and pruned logs, and refuses to search while
it cannot prove itself current. Real database (tests/postgres_cluster.py), real analyzer, made-up
unit vectors as faces; each library here is what one `renlian serve` holds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import FaceLibrary
from renlian.library.sync import IndexSync
from renlian.store.postgres import PostgresStore
from renlian.store.postgres_apps import PostgresAppStore
from renlian.vision.analyzer import FaceAnalyzer
from tests.library.test_library import APP, new_face, race, store_contents
from tests.postgres_cluster import Cluster

Node = tuple[PostgresStore, FaceLibrary]


@pytest.fixture
def nodes(database_url: str, analyzer: FaceAnalyzer) -> Iterator[Callable[[], Node]]:
    """Start nodes on one database; all are stopped at the end."""
    started: list[Node] = []

    def start() -> Node:
        store = PostgresStore(database_url, pool_size=4, timeout=2.0)
        library = FaceLibrary(store, analyzer, poll_seconds=0.2, max_lag_seconds=1.0)
        started.append((store, library))
        return store, library

    yield start
    for store, library in started:
        library.close()
        store.close()


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> float:
    """Seconds until `check` held (it must hold within `seconds`)."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < seconds, "the nodes did not converge"
        time.sleep(0.01)
    return time.monotonic() - began


def in_step(store: PostgresStore, *libraries: FaceLibrary) -> bool:
    numbers = store.feed_state().numbers
    return all(library.index.applied == numbers for library in libraries)


def test_a_write_on_one_node_is_searchable_on_the_other(
    nodes: Callable[[], Node], analyzer: FaceAnalyzer
) -> None:
    _, writer = nodes()
    _, reader = nodes()
    rng = np.random.default_rng(1)
    face = new_face(writer, rng, 1)
    writer.add(APP, "alice", "", ["g"], [face], replace=False, require_existing=False)
    # Read-your-writes on the writing node: searchable the moment add returns.
    assert writer.search_embeddings(APP, ["g"], face.embedding[None, :], 1)[0][0].uid == "alice"
    eventually(lambda: reader.group_exists_in_index(APP, "g"))
    [[hit]] = reader.search_embeddings(APP, ["g"], face.embedding[None, :], 1)
    assert (hit.uid, round(hit.scores[0], 5)) == ("alice", 1.0)
    reader.delete(APP, "alice", None)
    eventually(lambda: not writer.group_exists_in_index(APP, "g"))
    assert writer.index.contents() == reader.index.contents() == {}


def test_racing_nodes_end_with_identical_indexes_equal_to_the_database(
    nodes: Callable[[], Node], analyzer: FaceAnalyzer
) -> None:
    store, first = nodes()
    _, second = nodes()
    unexpected: list[FaceApiError] = []
    threads = [
        threading.Thread(target=lambda node=node: unexpected.extend(race(node, threads=3, operations=120)))
        for node in (first, second)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert unexpected == []
    eventually(lambda: in_step(store, first, second))
    in_database = store_contents(store, first.index.model)  # type: ignore[arg-type]
    assert in_database, "the race should leave some faces enrolled"
    assert first.index.contents() == second.index.contents() == in_database
    # Each node applied the other's writes from the log, and its own as it made them: no write, its
    # own or a concurrent one, ever made a node rebuild the app.
    assert first.sync is not None and second.sync is not None
    assert first.sync.reloads == second.sync.reloads == 0
    # A node started now loads the same.
    _, third = nodes()
    assert third.index.contents() == in_database


def test_a_node_behind_the_pruned_log_reloads_the_app(
    nodes: Callable[[], Node], analyzer: FaceAnalyzer
) -> None:
    store, writer = nodes()
    _, reader = nodes()
    rng = np.random.default_rng(2)
    writer.add(APP, "u0", "", ["g"], [new_face(writer, rng, 0)], replace=False, require_existing=False)
    eventually(lambda: in_step(store, reader))
    assert reader.sync is not None
    reader.sync.stop()  # away: a long network partition
    for serial in range(1, 4):
        writer.add(
            APP,
            f"u{serial}",
            "",
            ["g", "h"],
            [new_face(writer, rng, serial)],
            replace=False,
            require_existing=False,
        )
    writer.delete(APP, "u0", None)
    assert store.prune_changes(0, 0) > 0  # the log no longer covers what the reader missed
    back = IndexSync(reader.index, reader.store, poll_seconds=0.2, max_lag_seconds=1.0, lock_timeout=2.0)
    back.start()
    try:
        eventually(lambda: back.reloads == 1 and in_step(store, reader))
        assert reader.index.contents() == writer.index.contents() == store_contents(store, writer.index.model)  # type: ignore[arg-type]
    finally:
        back.stop()


def test_a_node_that_cannot_reach_the_database_stops_searching_then_recovers(
    nodes: Callable[[], Node], postgres_cluster: Cluster
) -> None:
    store, writer = nodes()
    _, reader = nodes()
    rng = np.random.default_rng(4)
    face = new_face(writer, rng, 1)
    writer.add(APP, "carol", "", ["g"], [face], replace=False, require_existing=False)
    eventually(lambda: reader.group_exists_in_index(APP, "g"))
    postgres_cluster.stop_server()
    try:
        # A search reads user_info from the database too; the index alone refusing shows the check.
        with pytest.raises(FaceApiError) as refused:
            eventually(lambda: not reader.group_exists_in_index(APP, "g"), seconds=5)
        assert refused.value.error == ErrorCode.INDEX_NOT_CURRENT
        assert "not known to be current" in str(refused.value.detail)
    finally:
        postgres_cluster.start_server()
    # The pools and the listeners reconnect by themselves; a write made now reaches both.
    later = new_face(writer, rng, 2)
    eventually(
        lambda: _tries(
            lambda: writer.add(APP, "dave", "", ["g"], [later], replace=False, require_existing=False)
        )
    )
    eventually(lambda: in_step(store, writer, reader))
    [[hit]] = reader.search_embeddings(APP, ["g"], later.embedding[None, :], 1)
    assert hit.uid == "dave"
    assert reader.index.contents() == writer.index.contents()


def _tries(write: Callable[[], None]) -> bool:
    try:
        write()
    except FaceApiError as exc:
        assert exc.error == ErrorCode.INDEX_NOT_CURRENT
        return False
    return True


def test_deleting_an_app_empties_its_groups_on_every_node(nodes: Callable[[], Node]) -> None:
    store, writer = nodes()
    _, reader = nodes()
    rng = np.random.default_rng(5)
    for serial, group in enumerate(["g", "h"]):
        writer.add(
            APP, "erin", "", [group], [new_face(writer, rng, serial)], replace=False, require_existing=False
        )
    writer.add("other", "frank", "", ["g"], [new_face(writer, rng, 9)], replace=False, require_existing=False)
    eventually(lambda: in_step(store, reader))
    PostgresAppStore(store).delete_app(APP)
    eventually(lambda: reader.index.faces_per_app().get(APP, 0) == 0)
    eventually(lambda: in_step(store, writer, reader))
    assert reader.index.contents() == writer.index.contents() == store_contents(store, writer.index.model)  # type: ignore[arg-type]
    assert {app for app, _ in reader.index.contents()} == {"other"}
