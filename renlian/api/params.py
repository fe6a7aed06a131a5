"""Request parameters: the body's fields and the query string, read as one mapping; Baidu's size limits.

Baidu's documentation puts parameters in a form-encoded body; its SDK sends some in the query
string, and GET requests can only use the query. Body values win over query values of the same name.
Each operation's declaration (operation.py) reads and checks its parameters from this mapping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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


@dataclass(frozen=True)
class Params:
    values: dict[str, str]

    @classmethod
    def merged(cls, query: Iterable[tuple[str, str]], body: Mapping[str, str]) -> Params:
        values = {key: value for key, value in query if key not in TRANSPORT}
        values.update((key, value) for key, value in body.items() if key not in TRANSPORT)
        return cls(values)
