"""face_token: a stable name for one face of one image, that later calls can pass instead of the image.

A token is derived from the image file's sha256 and the face's rank by size in it (0 = largest):
the same image and face always give the same token, on every node, with nothing stored. The
largest face's token is the first 32 hex digits of the file's sha256, which the face library
already keeps for every enrolled photo, so a registered face's token is found in the store for as
long as the face exists. Other tokens (every face that detect, search or match saw) live in a
bounded in-memory cache of their aligned crops, for at least `ttl` seconds unless more than
`capacity` faces were seen since (docs/compat.md).

A token's face keeps where it lay in the photo it was first seen in: its Location, as that call
reported it, travels inside the crop's JPEG as a comment segment, so the cache, the store and every
node have it wherever the crop is kept, and an image named by the token reports that location
rather than one measured on the crop.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from renlian.vision.faces import Face

TOKEN = re.compile(r"[0-9a-f]{32}")
# The comment that carries a crop's origin; the version names its layout.
ORIGIN_TAG = b"renlian-origin 1 "
_ORIGIN = re.compile(rb" ".join([rb"(-?[0-9]{1,7}(?:\.[0-9]{1,2})?)"] * 4) + rb" (-?[0-9]{1,3}|-)")
_COMMENT, _START_OF_SCAN, _JFIF = 0xFE, 0xDA, b"\xff\xe0"


@dataclass(frozen=True)
class Location:
    """A face's box in a photo as v3 reports it: clipped to the photo, in pixels, with its in-plane
    rotation in degrees (None where the call that saw it measured no head pose)."""

    left: float
    top: float
    width: float
    height: float
    rotation: int | None

    @classmethod
    def of(cls, face: Face, width: int, height: int) -> Location:
        x0, y0 = max(0.0, float(face.box[0])), max(0.0, float(face.box[1]))
        x1 = min(float(width), float(face.box[0] + face.box[2]))
        y1 = min(float(height), float(face.box[1] + face.box[3]))
        rotation = face.pose.rotation_angle if face.pose is not None else None
        return cls(round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2), rotation)


def with_origin(jpeg: bytes, origin: Location | None) -> bytes:
    """The crop with its origin in a JPEG comment after the JFIF header; decoders skip comments."""
    if origin is None:
        return jpeg
    rotation = "-" if origin.rotation is None else str(origin.rotation)
    payload = ORIGIN_TAG + f"{origin.left} {origin.top} {origin.width} {origin.height} {rotation}".encode()
    segment = bytes([0xFF, _COMMENT]) + (len(payload) + 2).to_bytes(2, "big") + payload
    at = 2 + (2 + int.from_bytes(jpeg[4:6], "big") if jpeg[2:4] == _JFIF else 0)
    return jpeg[:at] + segment + jpeg[at:]


def origin_of(jpeg: bytes) -> Location | None:
    """The origin kept in a crop by with_origin; None for a crop kept without one."""
    at = 2
    while at + 4 <= len(jpeg) and jpeg[at] == 0xFF and jpeg[at + 1] != _START_OF_SCAN:
        end = at + 2 + int.from_bytes(jpeg[at + 2 : at + 4], "big")
        body = jpeg[at + 4 : end]
        if jpeg[at + 1] == _COMMENT and body.startswith(ORIGIN_TAG):
            found = _ORIGIN.fullmatch(body[len(ORIGIN_TAG) :])
            if found is None:
                return None
            *box, rotation = found.groups()
            left, top, width, height = (float(number) for number in box)
            return Location(left, top, width, height, None if rotation == b"-" else int(rotation))
        at = end
    return None


def face_token(image_sha256: str, rank: int) -> str:
    if rank == 0:
        return image_sha256[:32]
    return hashlib.sha256(f"{image_sha256}:{rank}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class TokenFace:
    """What a token resolves to: the face's aligned 112x112 crop, as JPEG."""

    app_id: str
    crop_jpeg: bytes


class FaceTokenCache:
    """The recent faces, oldest out first; thread-safe."""

    def __init__(self, capacity: int, ttl_seconds: float) -> None:
        self._capacity = capacity
        self._ttl = ttl_seconds
        self._lock = threading.Lock()
        self._faces: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()

    def put(self, app_id: str, token: str, crop_jpeg: bytes) -> None:
        with self._lock:
            self._faces[(app_id, token)] = (time.monotonic() + self._ttl, crop_jpeg)
            self._faces.move_to_end((app_id, token))
            while len(self._faces) > self._capacity:
                self._faces.popitem(last=False)

    def get(self, app_id: str, token: str) -> TokenFace | None:
        with self._lock:
            found = self._faces.get((app_id, token))
            if found is None:
                return None
            expires, crop = found
            if expires < time.monotonic():
                del self._faces[(app_id, token)]
                return None
            return TokenFace(app_id, crop)
