"""Reading a request body: bounded while it streams in, then parsed into fields, once.

The byte count is kept as chunks arrive, so a chunked body (which declares no Content-Length) is
refused as soon as it passes the endpoint's limit, with nothing past the limit buffered.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl

from fastapi import Request
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from renlian.errors import ErrorCode, FaceApiError

FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
# A body has a few named fields; thousands of them are an attack on the parser, not a request.
MAX_FIELDS = 100
# Parsing this much form text takes long enough to be worth a thread rather than the event loop.
PARSE_IN_THREAD_BYTES = 256 * 1024
# Parsing copies a body a few times over for a moment. One large body at a time keeps those copies
# from adding up when many large requests arrive together (bench/memory.py).
_LARGE_FORMS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="form-parser")


def too_large(limit: int) -> FaceApiError:
    return FaceApiError(ErrorCode.IMAGE_SIZE_ERROR, f"the request body exceeds this endpoint's {limit} bytes")


async def read_body(request: Request, limit: int) -> bytearray:
    """The whole body, or 216202 as soon as it is known to be longer than `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not re.fullmatch(r"[0-9]{1,20}", declared):
            raise FaceApiError(ErrorCode.INVALID_PARAM, "the Content-Length header is not a byte count")
        if int(declared) > limit:
            raise too_large(limit)
    received = bytearray()
    async for chunk in request.stream():
        if len(received) + len(chunk) > limit:
            raise too_large(limit)
        # Appended in place: joining a list of chunks would hold the body twice.
        received += chunk
    return received


def is_form(content_type: str) -> bool:
    return content_type.lower().startswith((FORM, MULTIPART))


async def parse_fields(headers: Headers, body: bytearray) -> dict[str, str]:
    """The body's fields: form-encoded and multipart bodies are read; any other body has none."""
    content_type = headers.get("content-type", "").lower()
    if content_type.startswith(FORM):
        if len(body) > PARSE_IN_THREAD_BYTES:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_LARGE_FORMS, _form_fields, body)
        return _form_fields(body)
    if content_type.startswith(MULTIPART):
        return await _multipart_fields(headers, body)
    return {}


def _form_fields(body: bytearray) -> dict[str, str]:
    # Undecodable bytes become U+FFFD, raw or percent-encoded: such a value then fails its own
    # field's check, with that field's code.
    text = body.decode("utf-8", "replace")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="replace")
    except ValueError as exc:
        raise FaceApiError(ErrorCode.INVALID_PARAM, f"the form has more than {MAX_FIELDS} fields") from exc
    return dict(pairs)


async def _multipart_fields(headers: Headers, body: bytearray) -> dict[str, str]:
    async def stream() -> AsyncGenerator[bytes, None]:
        yield bytes(body)

    parser = MultiPartParser(headers, stream(), max_files=0, max_fields=MAX_FIELDS, max_part_size=len(body))
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise FaceApiError(
            ErrorCode.INVALID_PARAM, f"the multipart body cannot be read: {exc.message}"
        ) from exc
    fields: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            raise FaceApiError(ErrorCode.INVALID_PARAM, "send images as base64 form fields, not files")
        fields[key] = value
    return fields
