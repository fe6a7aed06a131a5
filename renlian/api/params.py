"""Request parameters: the body's fields and the query string, read as one mapping, and their checks.

Baidu's documentation puts parameters in a form-encoded body; its SDK sends some in the query
string, and GET requests can only use the query. Body values win over query values of the same name.
Every check answers a spec error code: a value a client can send never reaches `int()` unchecked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from renlian.errors import ErrorCode, FaceApiError

# Baidu's limits on the base64 text of the images in one request, by endpoint family.
DETECT_IMAGE_LIMIT = 2 * 1024 * 1024
MATCH_IMAGES_LIMIT = 20 * 1024 * 1024
DEFAULT_IMAGE_LIMIT = 10 * 1024 * 1024
# v3 faceverify takes up to 8 images ([PRIV] names 1, 3 or 8), each as large as detect's.
FACEVERIFY_IMAGES = 8
FACEVERIFY_IMAGES_LIMIT = FACEVERIFY_IMAGES * DETECT_IMAGE_LIMIT
# Bodies that carry no image (credentials, paging, ids).
SMALL_BODY_LIMIT = 64 * 1024


def body_limit(image_limit: int) -> int:
    """The most bytes a body may have to carry `image_limit` bytes of base64 text.

    Form encoding writes '+', '/' and '=' as three bytes each (about 6% of base64 text), and the
    other fields take a few kilobytes; a quarter of headroom covers both with room to spare.
    """
    return image_limit + image_limit // 4 + SMALL_BODY_LIMIT


# Parameters that are credentials, not request data; they may appear on any endpoint.
TRANSPORT = frozenset({"access_token"})
# ASCII digits only: str.isdigit() also admits "²" and full-width digits, which int() rejects.
_UINT = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class Params:
    values: dict[str, str]

    @classmethod
    def merged(cls, query: Iterable[tuple[str, str]], body: Mapping[str, str]) -> Params:
        values = {key: value for key, value in query if key not in TRANSPORT}
        values.update((key, value) for key, value in body.items() if key not in TRANSPORT)
        return cls(values)

    def optional(self, name: str) -> str | None:
        return self.values.get(name)

    def required(self, name: str) -> str:
        value = self.values.get(name)
        if value is None or value == "":
            raise FaceApiError(ErrorCode.NOT_ENOUGH_PARAM, f"{name} is required", field=name)
        return value

    def first_of(self, *names: str) -> str:
        """The first present name: the doc and the SDK disagree on `image` versus `images`."""
        for name in names:
            value = self.values.get(name)
            if value:
                return value
        raise FaceApiError(ErrorCode.NOT_ENOUGH_PARAM, f"{' or '.join(names)} is required", field=names[0])

    def uint(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self.values.get(name)
        if raw is None or raw == "":
            return default
        if not _UINT.fullmatch(raw.strip()):
            raise FaceApiError(
                ErrorCode.INVALID_PARAM, f"{name} must be a whole number from {minimum}", field=name
            )
        value = int(raw)
        if not minimum <= value <= maximum:
            raise FaceApiError(
                ErrorCode.INVALID_PARAM, f"{name} must be between {minimum} and {maximum}", field=name
            )
        return value

    def choice(self, name: str, allowed: Iterable[str], default: str) -> str:
        """One of `allowed`, or `default` when absent."""
        value = self.values.get(name) or default
        if value not in allowed:
            raise FaceApiError(
                ErrorCode.INVALID_PARAM, f"{name} must be one of {', '.join(allowed)}", field=name
            )
        return value

    def choices(self, name: str, allowed: Iterable[str]) -> list[str]:
        """A comma-separated list whose every item must be one of `allowed` (blank items are skipped)."""
        raw = self.values.get(name) or ""
        items = [item.strip() for item in raw.split(",") if item.strip()]
        unknown = sorted(set(items) - set(allowed))
        if unknown:
            raise FaceApiError(
                ErrorCode.INVALID_PARAM, f"unknown {name}: {', '.join(unknown)[:200]}", field=name
            )
        return items


def check_encoded_size(text: str, limit: int) -> None:
    if len(text) >= limit:
        raise FaceApiError(
            ErrorCode.IMAGE_SIZE_ERROR, f"the encoded image data is {len(text)} bytes; the limit is {limit}"
        )
