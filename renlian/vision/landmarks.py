"""Dense landmarks with InsightFace's 2d106det, and Baidu's 72-point layout derived from them.

The network sees a 192x192 crop centred on the detector's box, 1.5 times its larger side, and
returns 106 points in [-1, 1] crop coordinates. The 72-point table below picks and interpolates
those points into the order Baidu's landmark72 uses (docs/landmark72.md draws both).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from renlian.models.runtime import onnx_session
from renlian.vision.crop import invert_points, square_crop_transform, warp
from renlian.vision.faces import Face, Points
from renlian.vision.image import BGRImage

INPUT_SIZE = 192


class Landmark106:
    def __init__(self, model: Path, *, threads: int) -> None:
        self._session = onnx_session(model, threads)
        self._input = self._session.get_inputs()[0].name

    def __call__(self, image: BGRImage, face: Face) -> Points:
        x, y, w, h = (float(v) for v in face.box)
        matrix = square_crop_transform((x + w / 2, y + h / 2), max(w, h) * 1.5, INPUT_SIZE)
        crop = warp(image, matrix, INPUT_SIZE)
        # The graph normalises internally; it wants raw 0-255 RGB.
        blob = crop[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32)
        raw = self._session.run(None, {self._input: blob})[0].reshape(-1, 2)
        points = (raw + 1.0) * (INPUT_SIZE / 2)
        return invert_points(points.astype(np.float32), matrix)


# Baidu landmark72, index by index, as the 2d106det points (averaged where a tuple has several).
# "Left" is the image's left. Each closed shape starts at its leftmost point and runs clockwise in
# the image: along the upper edge to the right, back along the lower edge.
_CONTOUR_33 = (
    1,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    0,
    24,
    23,
    22,
    21,
    20,
    19,
    18,
    32,
    31,
    30,
    29,
    28,
    27,
    26,
    25,
    17,
)
LANDMARK72_FROM_106: tuple[tuple[int, ...], ...] = (
    # 0-12: face contour, image-left ear to image-right ear through the chin (6 is the chin).
    *((_CONTOUR_33[i],) for i in (0, 3, 5, 8, 11, 13, 16, 19, 21, 24, 27, 29, 32)),
    # 13-21: left eye. Corner, upper lid (14-16), corner, lower lid (18-20), pupil centre.
    (35,),
    (41,),
    (40,),
    (42,),
    (39,),
    (37,),
    (33,),
    (36,),
    (34, 38),
    # 22-29: left eyebrow. Outer end, upper edge, inner end, lower edge.
    (43,),
    (48,),
    (49,),
    (51,),
    (50, 46),
    (47,),
    (45,),
    (44,),
    # 30-38: right eye. Corner, upper lid (31-33), corner, lower lid (35-37), pupil centre.
    (89,),
    (95,),
    (94,),
    (96,),
    (93,),
    (91,),
    (87,),
    (90,),
    (88, 92),
    # 39-46: right eyebrow. Inner end, upper edge, outer end, lower edge.
    (102, 97),
    (103,),
    (104,),
    (105,),
    (101,),
    (100,),
    (99,),
    (98,),
    # 47-57: nose. Left side of the bridge down to the left wing, base, right wing up the bridge,
    # then the top of the bridge and the tip.
    (75,),
    (76,),
    (77,),
    (78,),
    (80,),
    (84,),
    (83,),
    (82,),
    (81,),
    (72,),
    (86,),
    # 58-71: mouth. Left corner, upper outer lip, right corner, lower outer lip, upper inner lip,
    # lower inner lip.
    (52,),
    (64,),
    (63,),
    (68,),
    (61,),
    (59,),
    (53,),
    (56,),
    (66,),
    (62,),
    (70,),
    (57,),
    (60,),
    (54,),
)

# Baidu's 4-point landmark: left eye centre, right eye centre, nose tip, mouth centre.
LANDMARK4_FROM_106: tuple[tuple[int, ...], ...] = ((34, 38), (88, 92), (86,), (62, 60))


def project(points106: Points, table: tuple[tuple[int, ...], ...]) -> Points:
    """Pick (and average) 106-point landmarks into another layout."""
    return np.stack([points106[list(group)].mean(axis=0) for group in table]).astype(np.float32)
