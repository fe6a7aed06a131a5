"""Keeping a process's search index equal to the store: the follower of the change feed.

The store numbers each app's face writes in commit order and logs what each one did
(store/writes.py), whichever process writes: this server, `renlian import` beside it, another node
of a fleet on PostgreSQL. This module applies them, on SQLite as on PostgreSQL:

- the writing process applies its own write before answering (read-your-writes); if an earlier
  number is not applied yet (another thread's or process's write), it applies the log up to its own;
- every `poll_seconds` the follower reads the epoch and every app's latest number on a connection
  of its own (PostgreSQL also announces each commit, so a node usually hears it at once) and applies
  what it has not, in number order, under the app's write lock;
- a node never rebuilds an app because a write advanced it: a number at or below the applied one is
  simply already held. It rebuilds an app only when the log no longer holds the changes it misses
  (pruned), when applying a change failed (a full disk under the rows files: the groups may differ
  from the store), or when the database's epoch changed (another database, or a restore); the app
  is refused meanwhile, and the rebuild runs on a thread of its own, so no other app waits for it.

Freshness, per app: a poll that started at time t and left an app with nothing to apply proves the
app's index holds every write committed before t. An app whose last proof is older than
`max_lag_seconds` (the database unreachable, the app's lock held by a long write, the app being
rebuilt) does not search: it answers 216300 (v3: 222302), which a client may retry, rather than miss
a face that another process acknowledged. Other apps go on searching.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.index import FaceIndex
from renlian.store.base import ChangeListener, FaceChanges, FaceStore, FeedState

logger = logging.getLogger("renlian.sync")

# How long the log keeps changes (by their commit time, whole changes at a time), how many of each
# app's last changes it keeps whatever their age, and how often a process prunes it.
LOG_KEEP_SECONDS = 3600.0
LOG_KEEP_CHANGES = 10_000
PRUNE_EVERY_SECONDS = 60.0
RECONNECT_PAUSE_SECONDS = 0.5
# A rebuild that failed (the disk still full, the database away) is tried again after this long.
REBUILD_RETRY_SECONDS = 1.0


class IndexSync:
    def __init__(
        self,
        index: FaceIndex,
        store: FaceStore,
        *,
        poll_seconds: float,
        max_lag_seconds: float,
        lock_timeout: float,
    ) -> None:
        """`lock_timeout`: the longest anything waits for an app's write lock before 216300."""
        self.index = index
        self.store = store
        self.poll_seconds = poll_seconds
        self.max_lag_seconds = max_lag_seconds
        self.lock_timeout = lock_timeout
        self.applied_changes = 0
        self.reloads = 0
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # Per app, when it was last proven current; apps with no number yet are current as of the
        # last poll (nothing was ever written to them).
        self._confirmed: dict[str, float] = {}
        self._numbered: set[str] = set()
        self._polled_at = float("-inf")
        # Apps whose groups may differ from the store: refused until rebuilt.
        self._unsound: set[str] = set()
        self._epoch_changed = False
        self._rebuild_wanted = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._listener: ChangeListener | None = None

    # Start-up and shutdown --------------------------------------------------------------------------

    def start(self) -> None:
        """Follow the store from the numbers the index was loaded at. Polls once before returning,
        so a server is current when it reports healthy."""
        self._listener = self.store.listen()
        self._poll(self._listener)
        for target, name in ((self._follow, "renlian-index-sync"), (self._rebuild, "renlian-index-rebuild")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._rebuild_wanted.set()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.close()
            self._listener = None

    @contextlib.contextmanager
    def writing(self, app_id: str, timeout: float | None = None) -> Iterator[None]:
        """The app's write lock: its changes reach the index one at a time, in number order. Bounded:
        a wait past `timeout` (by default `lock_timeout`) answers 216300 rather than hold a request
        without end."""
        with self._locks_lock:
            lock = self._locks.setdefault(app_id, threading.Lock())
        if not lock.acquire(timeout=self.lock_timeout if timeout is None else timeout):
            raise FaceApiError(
                ErrorCode.INDEX_NOT_CURRENT, "the face library is busy (its index is being updated)"
            )
        try:
            yield
        finally:
            lock.release()

    @contextlib.contextmanager
    def all_writes_held(self) -> Iterator[set[str]]:
        """Every app's write lock (shutdown's snapshot); yields the apps that are not sound."""
        with self._locks_lock:
            locks = list(self._locks.values())
        for lock in locks:
            lock.acquire()
        try:
            yield set(self._unsound)
        finally:
            for lock in locks:
                lock.release()

    # The writing process ----------------------------------------------------------------------------

    def wrote(self, app_id: str, changes: FaceChanges) -> None:
        """Apply a write this process committed, before it is answered. It never fails the write:
        the change is in the store, and what this cannot apply the follower will (or the app is
        refused until rebuilt)."""
        assert changes.sequence is not None
        try:
            with self.writing(app_id):
                self._wrote(app_id, changes)
        except FaceApiError as exc:  # the app's lock held too long, or the log unreadable now
            logger.warning(
                "index sync: change %d of app %s is left to the follower: %s", changes.sequence, app_id, exc
            )

    def _wrote(self, app_id: str, changes: FaceChanges) -> None:
        """wrote(), under the app's lock."""
        assert changes.sequence is not None
        if app_id in self._unsound:  # the rebuild under way reads the store after this commit
            return
        applied = self.index.applied.get(app_id, 0)
        if changes.sequence == applied + 1:
            self._apply(app_id, changes)
        elif changes.sequence > applied:
            self._catch_up(app_id, changes.sequence)

    # Reading ----------------------------------------------------------------------------------------

    def lag_seconds(self, app_id: str | None = None) -> float:
        """Seconds since the app's index (or, without one, every app's) was last proven current."""
        if app_id is None:
            apps = self._numbered | self._unsound
            return max((self.lag_seconds(app) for app in apps), default=time.monotonic() - self._polled_at)
        if app_id in self._unsound:
            return float("inf")
        confirmed = self._confirmed.get(app_id) if app_id in self._numbered else self._polled_at
        return time.monotonic() - (confirmed if confirmed is not None else float("-inf"))

    def reach(self, app_id: str, number: int) -> None:
        """Apply the app's changes up to `number` now, if the follower has not yet: a search that
        read the store (a group's existence) then sees an index at least as new as that read."""
        if number <= self.index.applied.get(app_id, 0) or app_id in self._unsound:
            return
        with self.writing(app_id):
            self._catch_up(app_id, number)

    def check(self, app_id: str) -> None:
        """216300 when the app's index is not known to be current within the promise (module doc)."""
        if app_id in self._unsound:
            raise FaceApiError(
                ErrorCode.INDEX_NOT_CURRENT,
                "this app's face index is being rebuilt from the store; try again shortly",
            )
        lag = self.lag_seconds(app_id)
        if lag > self.max_lag_seconds:
            seconds = f"{lag:.1f} s" if lag != float("inf") else "ever"
            raise FaceApiError(
                ErrorCode.INDEX_NOT_CURRENT,
                "this node's face index is not known to be current "
                f"(no check against the store for {seconds})",
            )

    # The follower -----------------------------------------------------------------------------------

    def _follow(self) -> None:
        last_prune = time.monotonic()
        failing = False
        while not self._stop.is_set():
            try:
                if self._listener is None:
                    self._listener = self.store.listen()
                    logger.info("index sync: following the store again")
                listener = self._listener
                self._poll(listener)
                failing = False
                while not self._stop.is_set():
                    remaining = self._polled_at + self.poll_seconds - time.monotonic()
                    if remaining <= 0:
                        break
                    heard = listener.wait(remaining)
                    if heard is not None:
                        self._heard(*heard)
                if time.monotonic() - last_prune > PRUNE_EVERY_SECONDS:
                    last_prune = time.monotonic()
                    self.store.prune_changes(LOG_KEEP_SECONDS, LOG_KEEP_CHANGES)
            except Exception as exc:  # the database went away: keep trying, never stop following
                if not failing:
                    logger.warning("index sync: %s; searches answer 216300 until it is back", exc)
                failing = True
                if self._listener is not None:
                    with contextlib.suppress(Exception):  # closing a broken connection may fail too
                        self._listener.close()
                    self._listener = None
                self._stop.wait(RECONNECT_PAUSE_SECONDS)

    def _heard(self, app_id: str, number: int) -> None:
        if app_id in self._unsound or number <= self.index.applied.get(app_id, 0):
            return
        with contextlib.suppress(FaceApiError), self.writing(app_id, self.poll_seconds):
            self._catch_up(app_id, number)  # (if the app is busy, the next poll takes it)

    def _poll(self, listener: ChangeListener) -> None:
        started = time.monotonic()
        state = listener.state()
        if state.epoch != self.index.epoch:
            self._epoch_moved(state)
            return
        for app_id, number in state.numbers.items():
            if app_id in self._unsound:
                continue
            # An app numbered for the first time was proven current (it had no write) by the last
            # poll: that proof stands while this one may have to skip the app's busy lock.
            self._confirmed.setdefault(app_id, self._polled_at)
            if number > self.index.applied.get(app_id, 0):
                # A short wait: an app busy with a long write must not hold up the other apps' proofs.
                try:
                    with self.writing(app_id, self.poll_seconds):
                        self._catch_up(app_id, number)
                except FaceApiError:  # busy: not proven current this time
                    continue
            if app_id not in self._unsound:
                self._confirmed[app_id] = started
        self._numbered = set(state.numbers)
        self._polled_at = started

    def _epoch_moved(self, state: FeedState) -> None:
        """Another database, or this one restored: no number the index holds means anything there."""
        if self._epoch_changed:  # a rebuild of every app is under way
            return
        logger.warning("index sync: the store's epoch changed (another database, or a restore)")
        self._epoch_changed = True
        self._unsound |= self.index.apps() | set(state.numbers)
        self._rebuild_wanted.set()

    def _catch_up(self, app_id: str, target: int) -> None:
        """Apply the app's logged changes up to `target`, in order. The caller holds the app's lock."""
        while self.index.applied.get(app_id, 0) < target and app_id not in self._unsound:
            after = self.index.applied.get(app_id, 0)
            batch = self.store.changes_since(app_id, after)
            if not batch or batch[0].sequence != after + 1:
                self._unsound_app(app_id, f"its changes after {after} are no longer logged")
                return
            for changes in batch:
                self._apply(app_id, changes)
                if app_id in self._unsound:
                    return

    def _apply(self, app_id: str, changes: FaceChanges) -> None:
        try:
            self.index.apply(changes)
        except Exception:
            logger.exception("index sync: change %s of app %s could not be applied", changes.sequence, app_id)
            self._unsound_app(app_id, "a change could not be applied to its index")
            return
        self.index.applied[app_id] = changes.sequence or 0
        self.applied_changes += 1

    def _unsound_app(self, app_id: str, why: str) -> None:
        logger.warning("index sync: app %s is refused until rebuilt: %s", app_id, why)
        self._unsound.add(app_id)
        self._rebuild_wanted.set()

    # Rebuilding -------------------------------------------------------------------------------------

    def _rebuild(self) -> None:
        while not self._stop.is_set():
            self._rebuild_wanted.wait()
            self._rebuild_wanted.clear()
            while self._unsound and not self._stop.is_set():
                try:
                    self._rebuild_once()
                except Exception as exc:
                    logger.warning("index sync: rebuild failed (%s); trying again", exc)
                    self._stop.wait(REBUILD_RETRY_SECONDS)

    def _rebuild_once(self) -> None:
        state = self.store.feed_state()
        if self._epoch_changed:
            self._unsound |= self.index.apps() | set(state.numbers)
        for app_id in sorted(self._unsound):
            if self._stop.is_set():
                return
            # The number first, then the faces: what commits between the two is applied again by the
            # follower's next catch-up, which is harmless (an add replaces its face id).
            number = self.store.feed_state().numbers.get(app_id, 0)
            fresh = self.index.build_app(self.store, app_id)
            with self.writing(app_id):
                self.index.swap_app(app_id, fresh)
                self.index.applied[app_id] = number
                self._unsound.discard(app_id)
            self.reloads += 1
            logger.info("index sync: app %s rebuilt from the store (%d groups)", app_id, len(fresh))
        if self._epoch_changed and not self._unsound:
            self.index.epoch = state.epoch
            self._epoch_changed = False
