"""Request parameters: the form body and the query string, read as one mapping.

Baidu's documentation puts parameters in a form-encoded body; its SDK sends some in the query
string, and GET requests can only use the query. Body values win over query values of the same name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request
from starlette.datastructures import UploadFile

from renlian.errors import ErrorCode, FaceApiError

# Baidu's limits on the base64 text of the images in one request, by endpoint family.
DETECT_IMAGE_LIMIT = 2 * 1024 * 1024
MATCH_IMAGES_LIMIT = 20 * 1024 * 1024
DEFAULT_IMAGE_LIMIT = 10 * 1024 * 1024
# Whole request bodies beyond this are refused before they are read.
MAX_BODY_BYTES = 24 * 1024 * 1024

# Parameters that are credentials, not request data; they may appear on any endpoint.
_TRANSPORT = frozenset({"access_token"})


@dataclass(frozen=True)
class Params:
    values: dict[str, str]

    def optional(self, name: str) -> str | None:
        return self.values.get(name)

    def required(self, name: str) -> str:
        value = self.values.get(name)
        if value is None or value == "":
            raise FaceApiError(ErrorCode.NOT_ENOUGH_PARAM, f"{name} is required")
        return value

    def first_of(self, *names: str) -> str:
        """The first present name: the doc and the SDK disagree on `image` versus `images`."""
        for name in names:
            value = self.values.get(name)
            if value:
                return value
        raise FaceApiError(ErrorCode.NOT_ENOUGH_PARAM, f"{' or '.join(names)} is required")

    def uint(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        if not raw.strip().isdigit():
            raise FaceApiError(ErrorCode.INVALID_PARAM, f"{name} must be a whole number")
        value = int(raw)
        if not minimum <= value <= maximum:
            raise FaceApiError(ErrorCode.INVALID_PARAM, f"{name} must be between {minimum} and {maximum}")
        return value

    def choices(self, name: str, allowed: Iterable[str]) -> list[str]:
        """A comma-separated list whose every item must be one of `allowed` (blank items are skipped)."""
        raw = self.values.get(name) or ""
        items = [item.strip() for item in raw.split(",") if item.strip()]
        unknown = sorted(set(items) - set(allowed))
        if unknown:
            raise FaceApiError(ErrorCode.INVALID_PARAM, f"unknown {name}: {', '.join(unknown)}")
        return items


def check_encoded_size(text: str, limit: int) -> None:
    if len(text) >= limit:
        raise FaceApiError(
            ErrorCode.IMAGE_SIZE_ERROR, f"the encoded image data is {len(text)} bytes; the limit is {limit}"
        )


async def read_params(request: Request) -> Params:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise FaceApiError(ErrorCode.IMAGE_SIZE_ERROR, f"the request body exceeds {MAX_BODY_BYTES} bytes")
    values = {key: value for key, value in request.query_params.items() if key not in _TRANSPORT}
    content_type = request.headers.get("content-type", "")
    if request.method == "POST" and content_type.startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form(max_files=0, max_part_size=MAX_BODY_BYTES)
        for key, value in form.items():
            if isinstance(value, UploadFile):
                raise FaceApiError(ErrorCode.INVALID_PARAM, "send images as base64 form fields, not files")
            if key not in _TRANSPORT:
                values[key] = value
    return Params(values)
