"""Baidu's response envelope: every response carries a log_id; errors are {error_code, error_msg, log_id}.

Baidu answers protocol errors with HTTP 200 and an error_code in the body, and its SDK only looks at
the body, so we do the same.
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


# The ext_fields / image_liveness word that asks for a liveness score.
LIVENESS = "faceliveness"


def format_liveness(score: float) -> str:
    """Baidu sends liveness scores as strings ("0.9999"); "0" marks an image that was not checked."""
    return f"{score:.4f}"
