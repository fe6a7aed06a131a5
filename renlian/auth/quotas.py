"""Per-app quotas (queries per second, per day, in total) and the server-wide concurrency cap.

Daily and total counts live in the store so that they survive a restart. Writing a row per request
would put an fsync on every call, so counts gather in memory and are flushed every second (and at
shutdown); a crash can forget at most that last second's counts.

In a fleet (several nodes on one PostgreSQL database) each node adds its own counts to the same rows
and admits against the stored sum plus what it has not flushed yet, so every node's requests count
once, and a node sees the others' with at most a second's delay. A flush carries an id and is retried
under the same id until it succeeds, so one whose commit was acknowledged but whose answer was lost
is not counted twice. The QPS window is each node's own (docs/scale-out.md).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime

from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import AppRecord, AppStore


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


class Quotas:
    def __init__(self, apps: AppStore, max_concurrent: int) -> None:
        self._apps = apps
        self._max_concurrent = max_concurrent
        self._in_flight = 0
        self._lock = threading.Lock()
        self._recent: dict[str, deque[float]] = {}
        self._pending: dict[tuple[str, str], int] = {}
        # Counts being written by a flush, and its id: still counted by admissions; a failed flush
        # is tried again as it was, never merged into newer counts, so never counted twice.
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
        """Count one request against the app's quotas, or refuse it with Baidu's code. It may read
        the store, so it runs off the event loop."""
        day = today()
        with self._lock:
            if app.qps_limit is not None:
                window = self._recent.setdefault(app.app_id, deque())
                now = time.monotonic()
                while window and now - window[0] >= 1.0:
                    window.popleft()
                if len(window) >= app.qps_limit:
                    raise FaceApiError(ErrorCode.QPS_LIMIT, f"at most {app.qps_limit} requests a second")
            if app.daily_limit is not None or app.total_limit is not None:
                stored_day, stored_total = self._apps.usage(app.app_id, day)
                unsaved = [self._pending, self._flushing]
                unsaved_day = sum(counts.get((app.app_id, day), 0) for counts in unsaved)
                unsaved_total = sum(
                    n for counts in unsaved for (app_id, _), n in counts.items() if app_id == app.app_id
                )
                if app.daily_limit is not None and stored_day + unsaved_day >= app.daily_limit:
                    raise FaceApiError(ErrorCode.DAILY_LIMIT, f"at most {app.daily_limit} requests a day")
                if app.total_limit is not None and stored_total + unsaved_total >= app.total_limit:
                    raise FaceApiError(ErrorCode.TOTAL_LIMIT, f"at most {app.total_limit} requests in all")
            if app.qps_limit is not None:
                self._recent[app.app_id].append(time.monotonic())
            self._pending[(app.app_id, day)] = self._pending.get((app.app_id, day), 0) + 1

    def flush(self) -> None:
        """Save the pending counts. The admission lock is not held while the store writes (an
        fsync, a round trip), so admissions never wait for it; meanwhile they count what is being
        written. After a failure the same batch, with the same id, is what the next flush writes."""
        with self._flush_lock:
            with self._lock:
                if not self._flushing:
                    if not self._pending:
                        return
                    self._flushing, self._pending = self._pending, {}
                    self._flushing_id = uuid.uuid4().hex
            self._apps.add_usage(self._flushing, self._flushing_id)
            with self._lock:
                self._flushing = {}
