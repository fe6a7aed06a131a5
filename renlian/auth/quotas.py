"""Per-app quotas (queries per second, per day, in total) and the server-wide concurrency cap.

Daily and total counts live in the store so that they survive a restart. Writing a row per request
would put an fsync on every call, so counts gather in memory and are flushed every second (and at
shutdown); a crash can forget at most that last second's counts.
"""

from __future__ import annotations

import threading
import time
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

    def admit(self, app: AppRecord) -> None:
        """Count one request against the app's quotas, or refuse it with Baidu's code."""
        day = today()
        with self._lock:
            if self._in_flight >= self._max_concurrent:
                raise FaceApiError(
                    ErrorCode.CLUSTER_LIMIT, f"more than {self._max_concurrent} requests at once"
                )
            if app.qps_limit is not None:
                window = self._recent.setdefault(app.app_id, deque())
                now = time.monotonic()
                while window and now - window[0] >= 1.0:
                    window.popleft()
                if len(window) >= app.qps_limit:
                    raise FaceApiError(ErrorCode.QPS_LIMIT, f"at most {app.qps_limit} requests a second")
            if app.daily_limit is not None or app.total_limit is not None:
                stored_day, stored_total = self._apps.usage(app.app_id, day)
                pending_day = self._pending.get((app.app_id, day), 0)
                pending_total = sum(n for (app_id, _), n in self._pending.items() if app_id == app.app_id)
                if app.daily_limit is not None and stored_day + pending_day >= app.daily_limit:
                    raise FaceApiError(ErrorCode.DAILY_LIMIT, f"at most {app.daily_limit} requests a day")
                if app.total_limit is not None and stored_total + pending_total >= app.total_limit:
                    raise FaceApiError(ErrorCode.TOTAL_LIMIT, f"at most {app.total_limit} requests in all")
            if app.qps_limit is not None:
                self._recent[app.app_id].append(time.monotonic())
            self._pending[(app.app_id, day)] = self._pending.get((app.app_id, day), 0) + 1
            self._in_flight += 1

    def release(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def flush(self) -> None:
        # Under the lock, so that no admission sees a count that is neither pending nor stored.
        with self._lock:
            if self._pending:
                self._apps.add_usage(self._pending)
                self._pending = {}
