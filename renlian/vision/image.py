"""Image intake shared by every endpoint: base64 text -> validated, oriented BGR pixels.

Checks run from cheapest to dearest so that a hostile request costs little: encoded size, base64,
magic bytes, then the header's dimensions (PIL reads them without decoding), and only then the
pixels. The decoded image is upright: JPEG EXIF orientation is applied, as a photo viewer would.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from renlian.errors import ErrorCode, FaceApiError

_DATA_URI = re.compile(r"^data:image/[a-zA-Z0-9.+-]+;base64,")
_DATA_URI_HEAD = re.compile(r"\s*data:image/[a-zA-Z0-9.+-]+;base64")
_WHITESPACE = str.maketrans("", "", "\r\n\t")
_FORMATS = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP"}

# 8-bit BGR pixels, height x width x 3. The dtype is not part of the static type because OpenCV's
# stubs type every result as an array of any number type.
BGRImage = NDArray[Any]


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int
    max_side: int
    min_side: int


class ImageTexts(Sequence[str]):
    """The images of a field that joins several with commas (the match endpoint's form).

    Each image's text is sliced out only when asked for, so a request that works through its images
    one at a time holds one image's text beside the field, not a copy of the whole field. A
    data-URI header has a comma of its own ("data:image/png;base64,..."), which joins it to its
    image rather than making two.
    """

    def __init__(self, field: str) -> None:
        self._field = field
        self._spans: list[tuple[int, int]] = []
        start = 0
        while True:
            comma = field.find(",", start)
            end = len(field) if comma < 0 else comma
            previous = self._spans[-1] if self._spans else None
            if previous and _is_data_uri_head(field, *previous):
                self._spans[-1] = (previous[0], end)
            else:
                self._spans.append((start, end))
            if comma < 0:
                break
            start = comma + 1

    def __len__(self) -> int:
        return len(self._spans)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [self._field[start:end] for start, end in self._spans[index]]
        start, end = self._spans[index]
        return self._field[start:end]


def _is_data_uri_head(field: str, start: int, end: int) -> bool:
    # Headers are short: never slice a long image just to test it.
    return end - start <= 64 and _DATA_URI_HEAD.fullmatch(field, start, end) is not None


def split_images(field: str) -> ImageTexts:
    return ImageTexts(field)


def decode_base64(text: str) -> bytes:
    """Base64 to bytes. A data-URI header is tolerated and stripped; so are line breaks.

    Form encoding turns an unescaped '+' into a space, a common client mistake, so spaces are read
    back as '+'.
    """
    text = _DATA_URI.sub("", text.strip(), count=1).translate(_WHITESPACE).replace(" ", "+")
    if not text:
        raise FaceApiError(ErrorCode.EMPTY_IMAGE, "the image field is empty")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise FaceApiError(ErrorCode.EMPTY_IMAGE, "the image is not valid base64") from exc
    if not data:
        raise FaceApiError(ErrorCode.EMPTY_IMAGE, "the image decodes to zero bytes")
    return data


def sniff_format(data: bytes) -> str:
    for magic, name in _FORMATS.items():
        if data.startswith(magic):
            return name
    raise FaceApiError(ErrorCode.IMAGE_FORMAT_ERROR, "only PNG, JPEG and BMP images are accepted")


def _check_dimensions(data: bytes, fmt: str, limits: ImageLimits) -> None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=[fmt]) as header:
                width, height = header.size
    except Image.DecompressionBombError as exc:
        raise FaceApiError(ErrorCode.IMAGE_SIZE_ERROR, "the image has too many pixels") from exc
    except Image.DecompressionBombWarning as exc:
        raise FaceApiError(ErrorCode.IMAGE_SIZE_ERROR, "the image has too many pixels") from exc
    except Exception as exc:
        raise FaceApiError(ErrorCode.IMAGE_FORMAT_ERROR, f"the {fmt} header cannot be read") from exc
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise FaceApiError(
            ErrorCode.IMAGE_SIZE_ERROR,
            f"{width}x{height} exceeds the limit of {limits.max_side} px a side "
            f"and {limits.max_pixels} pixels",
        )
    if min(width, height) < limits.min_side:
        raise FaceApiError(
            ErrorCode.IMAGE_SIZE_ERROR, f"{width}x{height} is smaller than {limits.min_side} px a side"
        )


def decode_image(text: str, limits: ImageLimits) -> BGRImage:
    """One base64 image field to upright 8-bit BGR pixels, or a FaceApiError saying why not."""
    return decode_photo(text, limits)[1]


def decode_photo(text: str, limits: ImageLimits) -> tuple[bytes, BGRImage]:
    """Like decode_image, also returning the file's bytes (what "the same image" is judged on)."""
    data = decode_base64(text)
    return data, decode_bytes(data, limits)


def decode_bytes(data: bytes, limits: ImageLimits) -> BGRImage:
    """An image file's bytes to upright 8-bit BGR pixels, with the same checks as a request's."""
    fmt = sniff_format(data)
    _check_dimensions(data, fmt, limits)
    # IMREAD_COLOR applies the EXIF orientation and turns grey, palette, alpha and 16-bit images
    # into 8-bit BGR.
    pixels = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if pixels is None:
        raise FaceApiError(ErrorCode.IMAGE_FORMAT_ERROR, f"the {fmt} data is corrupt or truncated")
    return pixels
