"""Reading a request body: bounded while it streams in, then parsed into fields, once.

The byte count is kept as chunks arrive, so a chunked body (which declares no Content-Length) is
refused as soon as it passes the endpoint's limit, with nothing past the limit buffered.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
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
_LARGE_BODIES = ThreadPoolExecutor(max_workers=1, thread_name_prefix="body-parser")

T = TypeVar("T")


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


Fields = dict[str, str]


async def parse_fields(headers: Headers, body: bytearray) -> Fields | list[Fields]:
    """The body's fields; a JSON array (v3's match and faceverify) gives one set per element.

    A body that starts with "{" or "[" is JSON whatever its Content-Type says: Baidu's Java SDK
    labels its JSON bodies form-urlencoded, and so does the Node SDK for match (no form body can
    start with either). Otherwise form-encoded and multipart bodies are read; any other has none.
    """
    if bytes(body[:64]).lstrip()[:1] in (b"{", b"["):
        return await _in_parser_thread(_json_fields, body)
    content_type = headers.get("content-type", "").lower()
    if content_type.startswith(FORM):
        return await _in_parser_thread(_form_fields, body)
    if content_type.startswith(MULTIPART):
        return await _multipart_fields(headers, body)
    return {}


async def _in_parser_thread(parse: Callable[[bytearray], T], body: bytearray) -> T:
    if len(body) <= PARSE_IN_THREAD_BYTES:
        return parse(body)
    return await asyncio.get_running_loop().run_in_executor(_LARGE_BODIES, parse, body)


def _json_fields(body: bytearray) -> Fields | list[Fields]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise FaceApiError(ErrorCode.INVALID_PARAM, "the body is not valid JSON") from exc
    if isinstance(document, dict):
        return _json_object(document)
    if isinstance(document, list) and all(isinstance(item, dict) for item in document):
        if len(document) > MAX_FIELDS:
            raise FaceApiError(ErrorCode.INVALID_PARAM, f"the body has more than {MAX_FIELDS} elements")
        return [_json_object(item) for item in document]
    raise FaceApiError(ErrorCode.INVALID_PARAM, "the body must be a JSON object, or an array of objects")


def _json_object(document: dict[str, Any]) -> Fields:
    """Values as the text a form would carry: clients send numbers as JSON numbers or as decimal
    strings, and group_id_list as a comma-separated string or a JSON array."""
    if len(document) > MAX_FIELDS:
        raise FaceApiError(ErrorCode.INVALID_PARAM, f"the body has more than {MAX_FIELDS} fields")
    return {str(key): _text(value) for key, value in document.items() if value is not None}


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)
    if isinstance(value, list) and all(
        isinstance(item, str | int) and not isinstance(item, bool) for item in value
    ):
        return ",".join(str(item) for item in value)
    # Nested objects are no parameter's shape: kept as JSON text, they fail their field's check.
    return json.dumps(value)


def _form_fields(body: bytearray) -> Fields:
    # Undecodable bytes become U+FFFD, raw or percent-encoded: such a value then fails its own
    # field's check, with that field's code.
    text = body.decode("utf-8", "replace")
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="replace")
    except ValueError as exc:
        raise FaceApiError(ErrorCode.INVALID_PARAM, f"the form has more than {MAX_FIELDS} fields") from exc
    return dict(pairs)


async def _multipart_fields(headers: Headers, body: bytearray) -> Fields:
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
