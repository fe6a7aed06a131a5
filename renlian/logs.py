"""Log output: plain text, or one JSON object per line (RENLIAN_LOG_FORMAT=json) for log shippers.

A record may carry `fields` (a dict, through `extra=`): the request log puts log_id, app_id,
endpoint, error_code and milliseconds there, so JSON lines have them as keys and text lines as
name=value pairs. Nothing here ever receives a token, a key or an image.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A backslash, and every character that can end or rewrite a line on a terminal or in a log reader.
_UNSAFE = re.compile(r"[\\\x00-\x1f\x7f\x85\u2028\u2029]")


def escape(text: str) -> str:
    """`text` with control characters (and backslashes) written as escapes: a value a client sent,
    such as a decoded path with %0A in it, cannot start a forged line of a text log."""
    return _UNSAFE.sub(_escaped, text)


def _escaped(found: re.Match[str]) -> str:
    character = found.group()
    return "\\\\" if character == "\\" else f"\\x{ord(character):02x}"


class TextFormatter(logging.Formatter):
    """TEXT_FORMAT with the message escaped; a traceback after it keeps its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = escape(record.message)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(getattr(record, "fields", None) or {})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's loggers pass their records up to this handler instead of printing their own way.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
