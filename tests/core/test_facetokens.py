"""A face_token's crop keeps where its face lay in its photo, and stays the same image."""

from __future__ import annotations

import cv2
import numpy as np

from renlian.core.facetokens import ORIGIN_TAG, Location, origin_of, with_origin
from renlian.library.faces import crop_jpeg


def crop() -> bytes:
    pixels = np.random.default_rng(1).integers(0, 255, (112, 112, 3), np.uint8)
    return crop_jpeg(pixels)


def decoded(jpeg: bytes) -> np.ndarray:
    pixels = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert pixels is not None
    return np.asarray(pixels)


def test_the_origin_travels_in_the_crop_and_decoders_ignore_it() -> None:
    plain = crop()
    for where in (Location(741.44, 295.71, 89.45, 109.06, -3), Location(0.0, 12.5, 100.0, 98.25, None)):
        kept = with_origin(plain, where)
        assert origin_of(kept) == where
        assert np.array_equal(decoded(kept), decoded(plain))
    assert origin_of(plain) is None  # a crop kept before origins were
    assert with_origin(plain, None) == plain


def test_a_damaged_origin_is_no_origin() -> None:
    kept = with_origin(crop(), Location(1.0, 2.0, 3.0, 4.0, 5))
    at = kept.index(ORIGIN_TAG) + len(ORIGIN_TAG)
    assert origin_of(kept[:at] + b"x" + kept[at + 1 :]) is None
