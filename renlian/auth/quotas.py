"""Per-app quotas (queries per second, per day, in total) and the server-wide concurrency cap.

Daily and total limits are never exceeded, on one node or across a fleet (several nodes on one
PostgreSQL database). A node admits an app's requests from a lease: a share of what the app has left,
taken from the store in one transaction that adds it to the stored counts at once
(AppStore.lease_usage), so that every other node sees it as spent. Admitting from a lease touches no
store. Every flush (each second, and at shutdown) gives back what the leases have left, subtracting
it from the stored counts, so a node holds a share for a second at most. A node that dies holding a
lease, or whose grant committed but lost its answer, leaves that share counted as used: the app is
under-admitted by it (for the rest of the day, or for good under a total limit), never over-admitted.

A lease is a quarter of what is left, at least one, so the last requests of a small limit are granted
one by one to whichever node asks; and at most what the node admitted for the app in the previous
second, kept between BASE_LEASE and MAX_LEASE, so a busy app takes about one lease a second from each
node. A refused request asks the store each time, so that a share given back is found at once.

Apps without a daily or total limit keep the cheaper path: their counts gather in memory and are
added to the store at each flush; a crash forgets at most that last second. A flush carries an id and
is tried again under the same id until it succeeds, so one whose commit landed but whose answer was
lost is applied once; leases given back travel in the same batches, so they are subtracted once too.

No store call runs under the lock that enter() and leave() take on the event loop: a grant runs under
its app's own lock, a flush under the flush lock. The QPS window is each node's own
(docs/scale-out.md).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import AppRecord, AppStore

BASE_LEASE = 32
MAX_LEASE = 1024


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


@dataclass
class _Lease:
    day: str
    limits: tuple[int | None, int | None]  # (daily, total)
    left: int


@dataclass
class _AppQuota:
    """One app's admission state, guarded by `lock`: a grant holds it over its store transaction, so
    the app's other admissions wait for that lease rather than take one each."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    window: deque[float] = field(default_factory=deque)
    lease: _Lease | None = None
    size: int = BASE_LEASE  # the most the next lease asks for
    admitted: int = 0  # from leases since the last flush: the next second's demand


class Quotas:
    def __init__(self, apps: AppStore, max_concurrent: int) -> None:
        self._apps = apps
        self._max_concurrent = max_concurrent
        self._in_flight = 0
        # Short sections only, never a store call: enter() and leave() take it on the event loop.
        self._lock = threading.Lock()
        self._quotas: dict[str, _AppQuota] = {}
        # (app_id, day) -> requests not yet saved (apps without daily or total limits), and what
        # leases gave back, not yet in any flush.
        self._pending: dict[tuple[str, str], int] = {}
        self._returning: dict[tuple[str, str], int] = {}
        # The batch being written by a flush (counts less give-backs), and its id: a failed flush is
        # tried again as it was, never merged into newer counts, so never applied twice.
        self._flushing: dict[tuple[str, str], int] = {}
        self._flushing_id = ""
        self._flush_lock = threading.Lock()

    def enter(self) -> None:
        """Take one of the server's request slots, before anything of the request is read: the slots
        bound how many bodies are in memory at once, whoever sends them."""
        with self._lock:
            if self._in_flight >= self._max_concurrent:
                raise FaceApiError(
                    ErrorCode.CLUSTER_LIMIT, f"more than {self._max_concurrent} requests at once"
                )
            self._in_flight += 1

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def admit(self, app: AppRecord) -> None:
        """Count one request against the app's quotas, or refuse it with Baidu's code. It may write
        to the store (a lease), so it runs off the event loop."""
        with self._lock:
            quota = self._quotas.setdefault(app.app_id, _AppQuota())
        with quota.lock:
            if app.qps_limit is not None:
                now = time.monotonic()
                while quota.window and now - quota.window[0] >= 1.0:
                    quota.window.popleft()
                if len(quota.window) >= app.qps_limit:
                    raise FaceApiError(ErrorCode.QPS_LIMIT, f"at most {app.qps_limit} requests a second")
            if app.daily_limit is None and app.total_limit is None:
                self._add(self._pending, app.app_id, today(), 1)
            else:
                self._take(app, quota)
            if app.qps_limit is not None:
                quota.window.append(time.monotonic())

    def flush(self) -> None:
        """Give back what every lease has left and save the pending counts. The admission lock is not
        held while the store writes (an fsync, a round trip); meanwhile admissions count what is
        being written. After a failure the same batch, with the same id, is what the next flush
        writes."""
        with self._flush_lock:
            with self._lock:
                quotas = list(self._quotas.items())
            # The apps whose leases are given back stay locked until the batch is written: a grant
            # for one of them meanwhile could not tell whether the give-back has committed, would
            # count it as spent, and could refuse a request that the budget allows.
            held: list[threading.Lock] = []
            try:
                for app_id, quota in quotas:
                    quota.lock.acquire()
                    giving = quota.lease is not None and quota.lease.left > 0
                    self._give_back(app_id, quota)
                    quota.size = min(MAX_LEASE, max(BASE_LEASE, quota.admitted))
                    quota.admitted = 0
                    if giving:
                        held.append(quota.lock)
                    else:
                        quota.lock.release()
                with self._lock:
                    if not self._flushing:
                        if not self._pending and not self._returning:
                            return
                        self._flushing = self._pending
                        for key, count in self._returning.items():
                            self._flushing[key] = self._flushing.get(key, 0) - count
                        self._pending, self._returning = {}, {}
                        self._flushing_id = uuid.uuid4().hex
                self._apps.add_usage(self._flushing, self._flushing_id)
                with self._lock:
                    self._flushing = {}
            finally:
                for lock in held:
                    lock.release()

    def _take(self, app: AppRecord, quota: _AppQuota) -> None:
        """One request from the app's lease, with a new lease when it is spent; under quota.lock."""
        day = today()
        limits = (app.daily_limit, app.total_limit)
        if quota.lease is not None and (quota.lease.day, quota.lease.limits) != (day, limits):
            # A lease sized under yesterday's count or other limits may not be spent under these.
            self._give_back(app.app_id, quota)
        if quota.lease is None or quota.lease.left == 0:
            quota.lease = _Lease(day, limits, self._grant(app, quota, day))
        quota.lease.left -= 1
        quota.admitted += 1

    def _grant(self, app: AppRecord, quota: _AppQuota, day: str) -> int:
        """A new lease's size, already added to the stored counts; 17 or 19 when nothing is left."""
        # Read before the store's sum: this node's requests not yet saved count as used, and one
        # saved meanwhile is counted twice, which only under-admits. A batch in flight counts as
        # requests only: what it gives back may have been subtracted already.
        unsaved_day, unsaved_total = self._unsaved(app.app_id, day, returned=False)

        def size(used_day: int, used_total: int) -> int:
            # Read after the store's sum: what was given back and is in no flush yet cannot have been
            # subtracted from it, so it is not used.
            returned_day, returned_total = self._unsaved(app.app_id, day, returned=True)
            used_day += unsaved_day - returned_day
            used_total += unsaved_total - returned_total
            left = []
            if app.daily_limit is not None:
                left.append(app.daily_limit - used_day)
                if left[-1] <= 0:
                    raise FaceApiError(ErrorCode.DAILY_LIMIT, f"at most {app.daily_limit} requests a day")
            if app.total_limit is not None:
                left.append(app.total_limit - used_total)
                if left[-1] <= 0:
                    raise FaceApiError(ErrorCode.TOTAL_LIMIT, f"at most {app.total_limit} requests in all")
            return min(quota.size, max(1, min(left) // 4))

        return self._apps.lease_usage(app.app_id, day, size)

    def _unsaved(self, app_id: str, day: str, *, returned: bool) -> tuple[int, int]:
        """(On `day`, ever) what the app gave back and is in no flush yet, or its requests not yet
        saved: those pending, and those of the batch in flight net of what it gives back, if positive."""
        with self._lock:
            sources = [self._returning] if returned else [self._pending, self._flushing]
            counts = [
                (key[1], max(0, n)) for source in sources for key, n in source.items() if key[0] == app_id
            ]
        return sum(n for key_day, n in counts if key_day == day), sum(n for _, n in counts)

    def _give_back(self, app_id: str, quota: _AppQuota) -> None:
        """Drop the app's lease; what it has left is subtracted at the next flush. Under quota.lock."""
        if quota.lease is not None and quota.lease.left:
            self._add(self._returning, app_id, quota.lease.day, quota.lease.left)
        quota.lease = None

    def _add(self, counts: dict[tuple[str, str], int], app_id: str, day: str, count: int) -> None:
        with self._lock:
            counts[(app_id, day)] = counts.get((app_id, day), 0) + count
