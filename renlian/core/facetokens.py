"""face_token: a stable name for one face of one image, that later calls can pass instead of the image.

A token is derived from the image file's sha256 and the face's rank by size in it (0 = largest):
the same image and face always give the same token, on every node, with nothing stored. The
largest face's token is the first 32 hex digits of the file's sha256, which the face library
already keeps for every enrolled photo, so a registered face's token is found in the store for as
long as the face exists. Other tokens (every face that detect, search or match saw) live in a
bounded in-memory cache of their aligned crops, for at least `ttl` seconds unless more than
`capacity` faces were seen since (docs/compat.md).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

TOKEN = re.compile(r"[0-9a-f]{32}")


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
