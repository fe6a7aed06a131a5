"""Keeping a node's index equal to a shared database's faces: the fleet on PostgreSQL.

Every node holds the whole exact index in memory. The store numbers each app's face writes in commit
order and announces each one (store/postgres.py, "change feed"); this module applies them:

- the writing node applies its own write before answering (read-your-writes), as with SQLite;
- every other node hears the announcement (LISTEN) and reads the write's changes from the log;
- every `poll_seconds` the node also reads every app's latest number on the same connection and
  catches up on any app it is behind: a lost announcement costs at most one poll;
- changes of one app are applied in number order, under the library's write lock for the app, so
  they reach the index in the order they committed. A node whose missing numbers are no longer
  logged (away for longer than the log keeps them) reloads that app's groups from the faces.

Freshness: a poll that started at time t and found nothing left to apply proves the index holds
every write committed before t. A node whose last such proof is older than `max_lag_seconds` (the
database unreachable, the listener reconnecting) does not search: it answers 216300 (v3: 222302),
which a client may retry, rather than miss a face that another node acknowledged.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.index import FaceIndex
from renlian.store.base import ChangeFeed, ChangeListener, FaceChanges, FaceStore

logger = logging.getLogger("renlian.sync")

# Changes read from the log at a time: a catch-up after a long absence holds this many in memory.
CATCH_UP_BATCH = 500
# How long the log keeps changes, and how often a node prunes it.
LOG_KEEP_SECONDS = 3600.0
PRUNE_EVERY_SECONDS = 60.0
RECONNECT_PAUSE_SECONDS = 0.5


class IndexSync:
    def __init__(
        self,
        index: FaceIndex,
        store: FaceStore,
        feed: ChangeFeed,
        writing: Callable[[str], AbstractContextManager[None]],
        *,
        poll_seconds: float,
        max_lag_seconds: float,
    ) -> None:
        """`writing(app_id)`: the library's write lock of an app, held while its changes apply."""
        self.index = index
        self.store = store
        self.feed = feed
        self.writing = writing
        self.poll_seconds = poll_seconds
        self.max_lag_seconds = max_lag_seconds
        self.applied: dict[str, int] = {}
        self.applied_changes = 0
        self.reloads = 0
        self._confirmed_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: ChangeListener | None = None

    # Start-up and shutdown --------------------------------------------------------------------------

    def start(self, numbers_before_load: dict[str, int]) -> None:
        """Follow the database from here: `numbers_before_load` are the sequences read before the
        index was loaded, so that changes committed during the load are applied again (harmless:
        an add replaces its face id, a removal of an absent face does nothing). Catches up once
        before returning, so a node is current when it reports healthy."""
        self.applied = dict(numbers_before_load)
        self._listener = self.feed.listen()
        self._poll(self._listener)
        self._thread = threading.Thread(target=self._run, name="renlian-index-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    # The writing node -------------------------------------------------------------------------------

    def wrote(self, app_id: str, changes: FaceChanges) -> None:
        """Apply this node's own committed write. The caller holds the app's write lock."""
        if changes.sequence is None:  # nothing changed, nothing numbered
            return
        if changes.sequence == self.applied.get(app_id, 0) + 1:
            self._apply(app_id, changes)
        else:  # another node's writes came first and are not applied yet: take them all in order
            self._catch_up(app_id, changes.sequence)

    # Reading ----------------------------------------------------------------------------------------

    def lag_seconds(self) -> float:
        """Seconds since the index was last proven current."""
        return time.monotonic() - self._confirmed_at

    def check(self) -> None:
        """216300 when the index is not known to be current within the promise (module doc)."""
        lag = self.lag_seconds()
        if lag > self.max_lag_seconds:
            seconds = f"{lag:.1f} s" if lag != float("inf") else "ever"
            raise FaceApiError(
                ErrorCode.DB_ERROR,
                "this node's face index is not known to be current "
                f"(no check against the database for {seconds})",
            )

    # The follower -----------------------------------------------------------------------------------

    def _run(self) -> None:
        last_prune = time.monotonic()
        failing = False
        while not self._stop.is_set():
            try:
                if self._listener is None:
                    self._listener = self.feed.listen()
                    logger.info("index sync: listening to the database again")
                listener = self._listener
                self._poll(listener)
                failing = False
                while not self._stop.is_set():
                    remaining = self._confirmed_at + self.poll_seconds - time.monotonic()
                    if remaining <= 0:
                        break
                    heard = listener.wait(remaining)
                    if heard is not None and heard[1] > self.applied.get(heard[0], 0):
                        with self.writing(heard[0]):
                            self._catch_up(*heard)
                if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                    last_prune = time.monotonic()
                    self.feed.prune_changes(LOG_KEEP_SECONDS)
            except Exception as exc:  # the database went away: keep trying, never stop following
                if not failing:
                    logger.warning("index sync: %s; searches answer 216300 until it is back", exc)
                failing = True
                if self._listener is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection may fail too
                        self._listener.close()
                    self._listener = None
                self._stop.wait(RECONNECT_PAUSE_SECONDS)

    def _poll(self, listener: ChangeListener) -> None:
        started = time.monotonic()
        for app_id, number in listener.sequences().items():
            if number != self.applied.get(app_id, 0):
                with self.writing(app_id):
                    self._catch_up(app_id, number)
        self._confirmed_at = started

    def _catch_up(self, app_id: str, target: int) -> None:
        """Apply the app's changes up to `target`, in order. The caller holds the app's write lock."""
        if target < self.applied.get(app_id, 0):  # the database went back (restored): start over
            self._reload(app_id)
        while self.applied.get(app_id, 0) < target:
            after = self.applied.get(app_id, 0)
            batch = self.feed.changes_since(app_id, after, CATCH_UP_BATCH)
            if not batch or batch[0].sequence != after + 1:
                self._reload(app_id)
                continue
            for changes in batch:
                if changes.sequence != self.applied.get(app_id, 0) + 1:
                    break  # a hole the log no longer covers: the next round reloads
                self._apply(app_id, changes)

    def _apply(self, app_id: str, changes: FaceChanges) -> None:
        self.index.apply(changes)
        self.applied[app_id] = changes.sequence or 0
        self.applied_changes += 1

    def _reload(self, app_id: str) -> None:
        """The changes are no longer logged: build the app's groups again from its faces. The number
        is read first, so changes committed during the rebuild are applied again after it."""
        number = self.feed.sequences().get(app_id, 0)
        logger.info("index sync: reloading app %s from the database (its missed changes are pruned)", app_id)
        self.index.reload_app(self.store, app_id)
        self.applied[app_id] = number
        self.reloads += 1
