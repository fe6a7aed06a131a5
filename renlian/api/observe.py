"""Every HTTP request counted, timed and logged: one middleware feeds /metrics and the request log.

The error code is read from the start of the answer's JSON (both protocols put `error_code` first
when there is one; a v2 success has none and counts as 0), so no route has to report it. An answer
without Baidu's envelope that is not a success keeps a code of its own: the token endpoint's OAuth
error (`invalid_client`), else `http_<status>` (a thumbnail's 404). The log
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
_OAUTH_ERROR = re.compile(rb'^\{"error":\s*"([a-z_]{1,40})"')


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
        status = 500

        async def watched(message: Message) -> None:
            nonlocal head, status
            if message["type"] == "http.response.start":
                status = message["status"]
            if message["type"] == "http.response.body" and not head:
                head = bytes(message.get("body", b""))[:64]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, watched)
        finally:
            self.metrics.in_flight.dec()
            self._record(scope, status, head, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, head: bytes, seconds: float) -> None:
        path: str = scope["path"]
        protocol = protocol_of(path)
        route = scope.get("route")
        template = getattr(route, "path", None)
        # A route's template is its label, parameters unfilled (a thumbnail's face_token never
        # appears). Unknown paths, and the catch-all for unknown /rest services, share one label: a
        # client must not be able to grow the metrics without end.
        endpoint = template if template and ":path}" not in template else "unknown"
        found = _ERROR_CODE.match(head)
        code = int(found.group(1)) if found else 0
        label = str(code)
        if not found and status >= 400:
            oauth = _OAUTH_ERROR.match(head)
            label = oauth.group(1).decode() if oauth else f"http_{status}"
        self.metrics.requests.labels(endpoint, protocol, label).inc()
        self.metrics.responses.labels(endpoint, str(status)).inc()
        self.metrics.latency.labels(endpoint).observe(seconds)
        if code in QUOTA_CODES:
            self.metrics.quota_refusals.labels(str(code)).inc()
        state = scope.get("state", {})
        if state.get("app_id"):
            # Once credentials admitted it: the app's recent usage, for the console.
            self.recent.record(state["app_id"], endpoint, label)
        if protocol == "other":
            return
        fields = {
            "log_id": state.get("log_id"),
            "app_id": state.get("app_id"),
            "endpoint": endpoint if endpoint != "unknown" else path[:200],
            "error_code": int(label) if label.isdigit() else label,
            "ms": round(seconds * 1000, 1),
        }
        access.info(" ".join(f"{name}={value}" for name, value in fields.items()), extra={"fields": fields})
