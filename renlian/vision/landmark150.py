"""Baidu's 150 named landmarks (v3 detect's landmark150) from the 478-point face mesh.

The layout is read from a real Baidu answer that holds both landmark72 and landmark150 for one face
(the spec's [SWIFT] source; docs/landmark150.md):

- A name's left and right are the person's own, so `eye_left_*` is the eye on the image's right
  (landmark72, by contrast, starts with the image's left). Inside a part, corner_left and
  eyeball_left are likewise towards the person's left.
- Numbered points run from the image's left to its right along lids, brows and lips; cheeks run
  from the temple down to the chin; the bridge runs down from between the eyes.

88 names are one mesh point each. The other 62 (the jaw line and the lips, where Baidu has more
points than the mesh) lie on the contour through the mesh's own points, at equal steps of length
between two named mesh points, the way Baidu spaces them.
"""

from __future__ import annotations

import numpy as np

from renlian.vision.faces import Points

# fmt: off
# Names given by one mesh point (478-point numbering; 468-477 are the two irises).
POINT: dict[str, int] = {
    # Jaw ends (level with the lower eyelids) and the lowest point of the chin.
    "cheek_right_1": 127, "chin_2": 152, "cheek_left_1": 356,
    # Brows: five points on the upper edge, the two ends below them, three on the lower edge.
    "eyebrow_right_upper_1": 70, "eyebrow_right_upper_2": 63, "eyebrow_right_upper_3": 105,
    "eyebrow_right_upper_4": 66, "eyebrow_right_upper_5": 107,
    "eyebrow_right_corner_right": 46, "eyebrow_right_corner_left": 55,
    "eyebrow_right_lower_1": 53, "eyebrow_right_lower_2": 52, "eyebrow_right_lower_3": 65,
    "eyebrow_left_upper_1": 336, "eyebrow_left_upper_2": 296, "eyebrow_left_upper_3": 334,
    "eyebrow_left_upper_4": 293, "eyebrow_left_upper_5": 300,
    "eyebrow_left_corner_right": 285, "eyebrow_left_corner_left": 276,
    "eyebrow_left_lower_1": 295, "eyebrow_left_lower_2": 282, "eyebrow_left_lower_3": 283,
    # Eyes: the iris model's lids (seven points each between the corners) and irises.
    "eye_right_corner_right": 33, "eye_right_corner_left": 133,
    "eye_right_eyelid_upper_1": 246, "eye_right_eyelid_upper_2": 161, "eye_right_eyelid_upper_3": 160,
    "eye_right_eyelid_upper_4": 159, "eye_right_eyelid_upper_5": 158, "eye_right_eyelid_upper_6": 157,
    "eye_right_eyelid_upper_7": 173,
    "eye_right_eyelid_lower_1": 7, "eye_right_eyelid_lower_2": 163, "eye_right_eyelid_lower_3": 144,
    "eye_right_eyelid_lower_4": 145, "eye_right_eyelid_lower_5": 153, "eye_right_eyelid_lower_6": 154,
    "eye_right_eyelid_lower_7": 155,
    "eye_right_eyeball_center": 468, "eye_right_eyeball_left": 469, "eye_right_eyeball_right": 471,
    "eye_left_corner_right": 362, "eye_left_corner_left": 263,
    "eye_left_eyelid_upper_1": 398, "eye_left_eyelid_upper_2": 384, "eye_left_eyelid_upper_3": 385,
    "eye_left_eyelid_upper_4": 386, "eye_left_eyelid_upper_5": 387, "eye_left_eyelid_upper_6": 388,
    "eye_left_eyelid_upper_7": 466,
    "eye_left_eyelid_lower_1": 382, "eye_left_eyelid_lower_2": 381, "eye_left_eyelid_lower_3": 380,
    "eye_left_eyelid_lower_4": 374, "eye_left_eyelid_lower_5": 373, "eye_left_eyelid_lower_6": 390,
    "eye_left_eyelid_lower_7": 249,
    "eye_left_eyeball_center": 473, "eye_left_eyeball_left": 476, "eye_left_eyeball_right": 474,
    # Nose: the bridge from between the eyes to above the tip; each side from beside the eye down the
    # side wall (1-3), the wing's widest point (4), below it (5), then along the nostril (6, 7).
    "nose_bridge_1": 6, "nose_bridge_2": 195, "nose_bridge_3": 5, "nose_tip": 4, "nose_middle_contour": 2,
    "nose_right_contour_1": 245, "nose_right_contour_2": 174, "nose_right_contour_3": 198,
    "nose_right_contour_4": 64, "nose_right_contour_5": 75, "nose_right_contour_6": 79,
    "nose_right_contour_7": 220,
    "nose_left_contour_1": 465, "nose_left_contour_2": 399, "nose_left_contour_3": 420,
    "nose_left_contour_4": 294, "nose_left_contour_5": 305, "nose_left_contour_6": 309,
    "nose_left_contour_7": 440,
    # Mouth: the corners of the outer and inner lip lines, and each line's middle point.
    "mouth_corner_right_outer": 61, "mouth_corner_left_outer": 291,
    "mouth_corner_right_inner": 78, "mouth_corner_left_inner": 308,
    "mouth_lip_upper_outer_6": 0, "mouth_lip_lower_outer_6": 17,
    "mouth_lip_upper_inner_6": 13, "mouth_lip_lower_inner_6": 14,
}

# Names placed along a contour: the mesh points it runs through (from one named point to another),
# and the names in between, at equal steps of length along it.
ALONG: tuple[tuple[tuple[int, ...], tuple[str, ...]], ...] = (
    ((127, 234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152),
     (*(f"cheek_right_{i}" for i in range(2, 12)), "chin_1")),
    ((356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152),
     (*(f"cheek_left_{i}" for i in range(2, 12)), "chin_3")),
    *(
        (path, tuple(f"mouth_lip_{row}_{i}" for i in numbers))
        for row, line in (
            ("upper_outer", (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)),
            ("lower_outer", (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)),
            ("upper_inner", (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)),
            ("lower_inner", (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)),
        )
        for path, numbers in ((line[:6], range(1, 6)), (line[5:], range(7, 12)))
    ),
)
# fmt: on


def _numbered(stem: str, count: int) -> tuple[str, ...]:
    return tuple(f"{stem}_{i}" for i in range(1, count + 1))


# Every name, in the order of the spec's list.
NAMES: tuple[str, ...] = (
    *(name for side in ("left", "right") for name in _numbered(f"cheek_{side}", 11)),
    *_numbered("chin", 3),
    *(
        name
        for side in ("left", "right")
        for name in (
            *_numbered(f"eyebrow_{side}_upper", 5),
            *_numbered(f"eyebrow_{side}_lower", 3),
            f"eyebrow_{side}_corner_left",
            f"eyebrow_{side}_corner_right",
        )
    ),
    *(
        name
        for side in ("left", "right")
        for name in (
            *_numbered(f"eye_{side}_eyelid_upper", 7),
            *_numbered(f"eye_{side}_eyelid_lower", 7),
            f"eye_{side}_corner_left",
            f"eye_{side}_corner_right",
            f"eye_{side}_eyeball_center",
            f"eye_{side}_eyeball_left",
            f"eye_{side}_eyeball_right",
        )
    ),
    *_numbered("nose_bridge", 3),
    *_numbered("nose_left_contour", 7),
    *_numbered("nose_right_contour", 7),
    "nose_middle_contour",
    "nose_tip",
    *(f"mouth_corner_{side}_{line}" for side in ("left", "right") for line in ("outer", "inner")),
    *(
        name
        for lip in ("upper", "lower")
        for line in ("outer", "inner")
        for name in _numbered(f"mouth_lip_{lip}_{line}", 11)
    ),
)


def along(points: Points, path: tuple[int, ...], count: int) -> Points:
    """`count` points at equal steps of length along the polyline through `path`, ends excluded."""
    line = points[list(path)].astype(np.float64)
    lengths = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    targets = lengths[-1] * np.arange(1, count + 1) / (count + 1)
    x = np.interp(targets, lengths, line[:, 0])
    y = np.interp(targets, lengths, line[:, 1])
    return np.stack([x, y], axis=1).astype(np.float32)


def landmark150(mesh: Points) -> dict[str, tuple[float, float]]:
    """Baidu's 150 names and their (x, y) in the image, from the 478 mesh points."""
    named = {name: mesh[index] for name, index in POINT.items()}
    for path, names in ALONG:
        named.update(zip(names, along(mesh, path, len(names)), strict=True))
    return {name: (float(named[name][0]), float(named[name][1])) for name in NAMES}
