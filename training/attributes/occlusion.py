"""Synthetic occlusions: OCFR-2022's occluder overlays (sunglasses, masks, hats, cups, hands...) warped
onto ArcFace-aligned crops by their anchor points, plus plain random shapes, with per-region labels
read off the overlay's alpha mask.

No set here labels occluded face parts, so the occlusion heads learn from these overlays; a few
occluders are kept out of training so bench/attributes.py can measure on unseen occluder types.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.datasets import DATA
from renlian.vision.attributes import OCCLUSION_REGIONS
from renlian.vision.crop import similarity_to
from renlian.vision.image import BGRImage
from renlian.vision.recognizer import ARCFACE_TEMPLATE

ROOT = DATA / "ocfr2022_occluders"
HELD_OUT_OCCLUDERS = frozenset({"sunglasses_3", "carnival_mask_2", "hat_2", "cup_4", "phone_1"})
# Each region as a box (x0, y0, x1, y1) of the 112x112 aligned crop; "left" is the image's left.
REGION_BOXES = {
    "left_eye": (28, 42, 50, 62),
    "right_eye": (62, 42, 84, 62),
    "nose": (46, 56, 66, 80),
    "mouth": (38, 82, 74, 102),
    "left_cheek": (14, 66, 40, 94),
    "right_cheek": (72, 66, 98, 94),
    "chin": (38, 100, 74, 112),
}
# The same regions as cells of the backbone's 7x7 grid (16 px each), (row, column).
REGION_CELLS = {
    "left_eye": ((3, 2),),
    "right_eye": ((3, 4),),
    "nose": ((4, 3),),
    "mouth": ((5, 2), (5, 3), (5, 4)),
    "left_cheek": ((4, 1), (5, 1)),
    "right_cheek": ((4, 5), (5, 5)),
    "chin": ((6, 2), (6, 3), (6, 4)),
}
COVERED = 0.5  # a region counts as occluded when the overlay covers at least half of its box
# Anchor columns of labels.csv and the template point each one lands on.
ANCHORS = {
    "anchor_left_eye_xy": 0,
    "anchor_right_eye_xy": 1,
    "anchor_nose_xy": 2,
    "anchor_left_mouth_xy": 3,
    "anchor_right_mouth_xy": 4,
}


@dataclass(frozen=True)
class Occluder:
    name: str
    rgba: NDArray[np.uint8]
    source: NDArray[np.float32]  # anchor points in the overlay
    target: NDArray[np.float32]  # where they go in the aligned crop


def occluders() -> list[Occluder]:
    out = []
    with (ROOT / "labels.csv").open() as handle:
        for row in csv.DictReader(handle):
            points = []
            for column, index in ANCHORS.items():
                value = (row.get(column) or "").strip()
                if value and value.replace(" ", "") != "0,0":
                    x, y = (float(v) for v in value.split(","))
                    points.append(((x, y), index))
            if len(points) < 2:
                continue
            loaded = cv2.imread(str(ROOT / row["image"]), cv2.IMREAD_UNCHANGED)
            if loaded is None or loaded.ndim != 3 or loaded.shape[2] != 4:
                continue
            rgba = np.asarray(loaded, np.uint8)
            name = row["image"].rsplit("/", 1)[-1].removesuffix(".png")
            source = np.array([p for p, _ in points], np.float32)
            target = ARCFACE_TEMPLATE[[i for _, i in points]].astype(np.float32)
            out.append(Occluder(name, rgba, source, target))
    return out


def region_labels(alpha: NDArray[np.float32]) -> NDArray[np.int64]:
    """1 for each region (in OCCLUSION_REGIONS order) the mask covers at least COVERED of."""
    labels = []
    for region in OCCLUSION_REGIONS:
        x0, y0, x1, y1 = REGION_BOXES[region]
        labels.append(int(alpha[y0:y1, x0:x1].mean() >= COVERED))
    return np.array(labels)


def overlay(
    crop: BGRImage, occluder: Occluder, rng: np.random.Generator
) -> tuple[BGRImage, NDArray[np.int64]]:
    """The occluder warped onto the crop with a little random scale and shift, and the region labels."""
    matrix = similarity_to(occluder.source, occluder.target)
    jitter = rng.uniform(0.9, 1.1)
    matrix = np.vstack([matrix, [0, 0, 1]])
    centre = occluder.target.mean(axis=0)
    shift = rng.uniform(-3, 3, size=2)
    adjust = np.array(
        [
            [jitter, 0, (1 - jitter) * centre[0] + shift[0]],
            [0, jitter, (1 - jitter) * centre[1] + shift[1]],
            [0, 0, 1],
        ]
    )
    warped = cv2.warpAffine(occluder.rgba, (adjust @ matrix)[:2], (112, 112), flags=cv2.INTER_LINEAR)
    alpha = warped[:, :, 3:4].astype(np.float32) / 255.0
    blended = crop.astype(np.float32) * (1 - alpha) + warped[:, :, :3].astype(np.float32) * alpha
    return blended.astype(np.uint8), region_labels(alpha[:, :, 0])


def random_shape(crop: BGRImage, rng: np.random.Generator) -> tuple[BGRImage, NDArray[np.int64]]:
    """A flat or noisy rectangle or ellipse over a random part of the face: occluders unlike OCFR's."""
    mask = np.zeros((112, 112), np.uint8)
    cx, cy = rng.uniform(20, 92), rng.uniform(35, 105)
    w, h = rng.uniform(14, 60), rng.uniform(10, 40)
    if rng.random() < 0.5:
        cv2.rectangle(mask, (int(cx - w / 2), int(cy - h / 2)), (int(cx + w / 2), int(cy + h / 2)), 255, -1)
    else:
        cv2.ellipse(mask, (int(cx), int(cy)), (int(w / 2), int(h / 2)), 0, 0, 360, 255, -1)
    if rng.random() < 0.5:
        fill = np.broadcast_to(rng.integers(0, 256, size=3), crop.shape).astype(np.float32)
    else:
        fill = rng.integers(0, 256, size=crop.shape).astype(np.float32)
    alpha = (mask.astype(np.float32) / 255.0)[:, :, None]
    blended = crop.astype(np.float32) * (1 - alpha) + fill * alpha
    return blended.astype(np.uint8), region_labels(alpha[:, :, 0])
