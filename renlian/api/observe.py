"""Every HTTP request counted, timed and logged: one middleware feeds /metrics and the request log.

The error code is read from the start of the answer's JSON (both protocols put `error_code` first
when there is one; a v2 success has none and counts as 0), so no route has to report it. The log
line carries the request's log_id, its app_id once credentials admitted it, the endpoint, the error
code and the milliseconds: never a token, a key or an image.
"""

from __future__ import annotations

import logging
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from renlian.api.envelope import is_v3
from renlian.api.recent import RecentCalls
from renlian.metrics import QUOTA_CODES, Metrics

access = logging.getLogger("renlian.access")
_ERROR_CODE = re.compile(rb'^\{"error_code":\s*(\d+)')


def protocol_of(path: str) -> str:
    if is_v3(path):
        return "v3"
    if path.startswith("/rest/"):
        return "v2"
    if path.startswith("/oauth/"):
        return "oauth"
    return "other"


class RequestObserver:
    def __init__(self, app: ASGIApp, metrics: Metrics, recent: RecentCalls) -> None:
        self.app = app
        self.metrics = metrics
        self.recent = recent

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        head = b""

        async def watched(message: Message) -> None:
            nonlocal head
            if message["type"] == "http.response.body" and not head:
                head = bytes(message.get("body", b""))[:64]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, watched)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, head, time.perf_counter() - started)

    def _record(self, scope: Scope, head: bytes, seconds: float) -> None:
        path: str = scope["path"]
        protocol = protocol_of(path)
        route = scope.get("route")
        template = getattr(route, "path", None)
        # Unknown paths share one label: a client must not be able to grow the metrics without end.
        endpoint = template if template and "{" not in template else "unknown"
        found = _ERROR_CODE.match(head)
        code = int(found.group(1)) if found else 0
        self.metrics.requests.labels(endpoint, protocol, str(code)).inc()
        self.metrics.latency.labels(endpoint).observe(seconds)
        if code in QUOTA_CODES:
            self.metrics.quota_refusals.labels(str(code)).inc()
        state = scope.get("state", {})
        if state.get("app_id"):
            # Once credentials admitted it: the app's recent usage, for the console.
            self.recent.record(state["app_id"], endpoint, str(code))
        if protocol == "other":
            return
        fields = {
            "log_id": state.get("log_id"),
            "app_id": state.get("app_id"),
            "endpoint": endpoint if endpoint != "unknown" else path[:200],
            "error_code": code,
            "ms": round(seconds * 1000, 1),
        }
        access.info(" ".join(f"{name}={value}" for name, value in fields.items()), extra={"fields": fields})
