"""Baidu's response envelopes, one per protocol.

v2: every response carries a log_id; errors are {error_code, error_msg, log_id}. v3: every response,
success or error, is {error_code, error_msg, log_id, timestamp, cached, result}, with error_code 0
and error_msg "SUCCESS" on success and result null on error. Baidu answers protocol errors with HTTP
200 and an error_code in the body, and its SDKs only look at the body (Java's only at a 200's), so
we do the same.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi.responses import JSONResponse

from renlian.errors import FaceApiError


class LogIds:
    """Unique request ids below 2**53: milliseconds since the epoch times 1024, plus a sequence.

    2**53 is where JSON numbers stop being exact for JavaScript clients, which parse them as
    doubles: a larger id reaches them rounded and never matches the server log. Ids increase
    monotonically, so log lines sort by them; a burst of more than 1,024 requests in a millisecond
    borrows from the next millisecond rather than repeating an id. The bound holds until 2248.
    """

    SEQUENCE_BITS = 10

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0

    def next(self) -> int:
        with self._lock:
            candidate = int(time.time() * 1000) << self.SEQUENCE_BITS
            self._last = max(candidate, self._last + 1)
            return self._last


def ok(log_id: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"log_id": log_id, **body})


def error(log_id: int, exc: FaceApiError) -> JSONResponse:
    body: dict[str, Any] = {"error_code": exc.error.code, "error_msg": exc.message, "log_id": log_id}
    if exc.detail:
        body["error_detail"] = exc.detail
    return JSONResponse(body)


# Paths answered in v3's envelope: v3 itself, and the other families today's SDKs call beside it.
V3_PATHS = ("/rest/2.0/face/v3/", "/rest/2.0/face/v4/", "/rest/2.0/face/capture/", "/rest/2.0/face/scene/")


def is_v3(path: str) -> bool:
    return path.startswith(V3_PATHS)


def v3_ok(log_id: int, result: dict[str, Any] | None) -> JSONResponse:
    return JSONResponse(_v3(0, "SUCCESS", log_id, result))


def v3_error(log_id: int, exc: FaceApiError) -> JSONResponse:
    code, message = exc.v3()
    body = _v3(code, message, log_id, None)
    if exc.detail:
        body["error_detail"] = exc.detail
    return JSONResponse(body)


def _v3(code: int, message: str, log_id: int, result: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "error_code": code,
        "error_msg": message,
        "log_id": log_id,
        "timestamp": int(time.time()),
        "cached": 0,
        "result": result,
    }


def error_for(path: str, log_id: int, exc: FaceApiError) -> JSONResponse:
    """The error in the envelope of the protocol the path belongs to."""
    return v3_error(log_id, exc) if is_v3(path) else error(log_id, exc)


# The ext_fields / image_liveness word that asks for a liveness score.
LIVENESS = "faceliveness"


def format_liveness(score: float) -> str:
    """Baidu sends liveness scores as strings ("0.9999"); "0" marks an image that was not checked."""
    return f"{score:.4f}"
