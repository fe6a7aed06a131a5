"""v3 detect's eye_status, emotion, mask and spoofing: linear heads over the attribute backbone's maps.

The heads live in their own weights file (weights/v3fields.npz, trained by training/v3fields, model
card beside it) and read FaceFeatures like the attribute heads. Each head is one matrix and bias with
the feature standardisation and the probability calibration folded in (renlian.vision.attributes.Head),
over either the pooled features or the mean of some cells of the 7x7 grid.

Two fields need one more backbone pass each. eye_status has one head for the eye in the image-left
cell: the other eye is read from the mirrored crop, where it lies in that same cell, so both eyes get
the same treatment (a head per cell answered a drawn-shut right eye far more weakly than a left one).
emotion reads the grey crop: every emotion set here is greyscale, and on colour photos the grey crop's
answers are the ones that stay with the training data (docs/attributes.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from renlian.vision.attributes import Attributes, Head
from renlian.vision.backbone import FaceFeatures
from renlian.vision.image import BGRImage

V3_FIELDS = frozenset({"eye_status", "emotion", "mask", "spoofing"})
# Baidu's names; its pouty and grimace have no training data here and are never returned.
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
# The eye head, the emotion and mask heads, and one head for each kind of synthetic face the spoofing
# score covers: GAN output and hand-made photo composites.
HEADS = ("eye", "emotion", "mask", "spoofing.gan", "spoofing.edit")


class V3FieldModel:
    def __init__(self, weights: Path) -> None:
        with np.load(weights) as data:
            meta: dict[str, Any] = json.loads(str(data["meta"]))
            self.heads = {
                name: Head(data[f"{name}.weights"], data[f"{name}.bias"], tuple(meta["labels"][name]))
                for name in HEADS
            }
        # "pooled", or the grid cells (row, column) a head reads.
        self.inputs: dict[str, tuple[tuple[int, int], ...] | None] = {
            name: None if cells == "pooled" else tuple((int(r), int(c)) for r, c in cells)
            for name, cells in meta["inputs"].items()
        }

    def _probabilities(self, name: str, features: FaceFeatures) -> dict[str, float]:
        cells = self.inputs[name]
        values = features.pooled() if cells is None else features.region(cells)
        return self.heads[name].probabilities(values)

    def describe(
        self,
        fields: frozenset[str],
        aligned: BGRImage,
        features: FaceFeatures,
        features_of: Callable[[BGRImage], FaceFeatures],
        into: Attributes,
    ) -> None:
        """Fill the requested v3 fields of `into` from the aligned crop's features (`features_of` runs
        the backbone on the mirrored or grey crop where a field needs it)."""
        if "eye_status" in fields:
            # "left" is the image's left, as in quality.occlusion.
            mirrored = features_of(np.ascontiguousarray(aligned[:, ::-1]))
            into.eye_status = (
                self._probabilities("eye", features)["open"],
                self._probabilities("eye", mirrored)["open"],
            )
        if "emotion" in fields:
            grey = cv2.cvtColor(cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
            emotions = self._probabilities("emotion", features_of(grey))
            top = max(emotions, key=emotions.__getitem__)
            into.emotion = (top, emotions[top])
        if "mask" in fields:
            masked = self._probabilities("mask", features)["mask"]
            into.mask = (1, masked) if masked >= 0.5 else (0, 1.0 - masked)
        if "spoofing" in fields:
            # Either kind makes the face synthetic: the heads are calibrated separately, and their
            # scores combine as independent chances (a face is real only if neither head fires).
            gan = self._probabilities("spoofing.gan", features)["synthetic"]
            edit = self._probabilities("spoofing.edit", features)["synthetic"]
            into.spoofing = 1.0 - (1.0 - gan) * (1.0 - edit)
