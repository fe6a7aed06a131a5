"""Face attributes: linear heads over the shared backbone features, plus documented pixel measures and
landmark rules where no labelled data exists.

Every head is one matrix and bias over the pooled features (or a region's features, for occlusion),
written by training/attributes with the feature standardisation and the probability calibration
folded in, so a softmax of its output is already the calibrated probability of each class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from renlian.vision.backbone import FaceFeatures
from renlian.vision.faces import Points

# Every face_fields value that asks for an attribute (the spec's list less "landmark").
ATTRIBUTE_FIELDS = frozenset(
    {"age", "beauty", "expression", "faceshape", "gender", "glasses", "race", "qualities"}
)
# The fields whose answer reads the dense landmarks.
LANDMARK_FIELDS = frozenset({"expression", "faceshape"})

OCCLUSION_REGIONS = ("left_eye", "right_eye", "nose", "mouth", "left_cheek", "right_cheek", "chin")

# 2d106det indices: mouth corners, middle of the upper and lower inner lip, and the outline points
# at the temples (its ends) and at the jaw angles (halfway to the chin): the outline runs
# 1, 9..16, 2..8, 0 (chin), 24..18, 32..25, 17.
MOUTH_CORNERS = (52, 61)
INNER_LIPS = (62, 60)
TEMPLES = (1, 17)
JAW_ANGLES = (16, 32)


@dataclass(frozen=True)
class Head:
    """Calibrated logits (or a regression value) = features @ weights + bias."""

    weights: NDArray[np.float32]
    bias: NDArray[np.float32]
    labels: tuple[str, ...]

    def logits(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        return np.asarray(features @ self.weights + self.bias, np.float64)

    def probabilities(self, features: NDArray[np.float32]) -> dict[str, float]:
        logits = self.logits(features)
        exp = np.exp(logits - logits.max())
        return dict(zip(self.labels, (exp / exp.sum()).tolist(), strict=True))


def _sigmoid(value: float) -> float:
    return float(1.0 / (1.0 + np.exp(-np.clip(value, -50.0, 50.0))))


@dataclass(frozen=True)
class Rules:
    """The documented, non-learned parts (docs/attributes.md gives their derivation)."""

    blur_midpoint: float  # Laplacian variance scoring 0.5 blur
    laugh_opening: float  # inner-lip gap / mouth width at which a smile counts as a laugh
    laugh_softness: float
    triangle_ratio: float  # jaw width / temple width at which a face counts as triangular
    triangle_softness: float
    age_range: tuple[float, float]


@dataclass
class Qualities:
    occlusion: dict[str, float]
    blur: float
    illumination: float
    incompleteness: float
    human: float
    cartoon: float


@dataclass
class Attributes:
    """What was asked for; a field left None was not requested."""

    age: float | None = None
    beauty: float | None = None
    expression: tuple[int, float] | None = None
    faceshape: list[tuple[str, float]] | None = None
    gender: tuple[str, float] | None = None
    glasses: tuple[int, float] | None = None
    race: tuple[str, float] | None = None
    qualities: Qualities | None = field(default=None)
    # v3-only fields (renlian.vision.v3fields): each eye's probability of being open (image-left eye
    # first), (emotion, probability), (0 no mask / 1 mask, probability), probability of a synthetic face.
    eye_status: tuple[float, float] | None = None
    emotion: tuple[str, float] | None = None
    mask: tuple[int, float] | None = None
    spoofing: float | None = None


def mouth_opening(landmarks106: Points) -> float:
    """Gap between the inner lips over the mouth's width (0 closed, about 0.4 wide open)."""
    width = float(np.linalg.norm(landmarks106[MOUTH_CORNERS[0]] - landmarks106[MOUTH_CORNERS[1]]))
    gap = float(np.linalg.norm(landmarks106[INNER_LIPS[0]] - landmarks106[INNER_LIPS[1]]))
    return gap / width if width > 0 else 0.0


def jaw_to_temple(landmarks106: Points) -> float:
    """Width across the jaw angles over the width across the temples; above 1 the face widens downwards."""
    temples = float(np.linalg.norm(landmarks106[TEMPLES[0]] - landmarks106[TEMPLES[1]]))
    jaw = float(np.linalg.norm(landmarks106[JAW_ANGLES[0]] - landmarks106[JAW_ANGLES[1]]))
    return jaw / temples if temples > 0 else 0.0


# The head names in the weights file, and what each predicts.
HEADS = ("age", "beauty", "gender", "race", "smile", "glasses", "faceshape", "type")
# Baidu's race names, from the training labels' five classes: the two classes Baidu has no name for
# (UTKFace's "indian" and "others": South Asian, Middle Eastern, Latino) are reported together as
# "arabs", Baidu's only other class (docs/compat.md).
RACE_NAMES = {"asian": "yellow", "white": "white", "black": "black", "indian": "arabs", "others": "arabs"}
GLASSES_CODES = {"none": 0, "ordinary": 1, "sunglasses": 2}
# Baidu has no "oblong": the training labels' long faces are reported as oval, their nearest type.
FACESHAPE_NAMES = {"square": "square", "oval": "oval", "oblong": "oval", "heart": "heart", "round": "round"}
FACESHAPE_ORDER = ("square", "triangle", "oval", "heart", "round")


class AttributeModel:
    def __init__(self, weights: Path) -> None:
        with np.load(weights) as data:
            meta: dict[str, Any] = json.loads(str(data["meta"]))
            self.heads = {
                name: Head(data[f"{name}.weights"], data[f"{name}.bias"], tuple(meta["labels"][name]))
                for name in (*HEADS, *(f"occlusion.{region}" for region in OCCLUSION_REGIONS))
            }
        self.cells: dict[str, tuple[tuple[int, int], ...]] = {
            region: tuple((int(r), int(c)) for r, c in meta["occlusion_cells"][region])
            for region in OCCLUSION_REGIONS
        }
        self.rules = Rules(**{**meta["rules"], "age_range": tuple(meta["rules"]["age_range"])})

    def predict(
        self,
        fields: frozenset[str],
        features: FaceFeatures,
        landmarks106: Points | None,
        measures: tuple[float, float, float] | None,
    ) -> Attributes:
        """The requested fields. `measures` (blur, illumination, incompleteness) come with qualities."""
        pooled = features.pooled()
        out = Attributes()
        if "age" in fields:
            low, high = self.rules.age_range
            out.age = float(np.clip(self.heads["age"].logits(pooled)[0], low, high))
        if "beauty" in fields:
            out.beauty = float(np.clip(self.heads["beauty"].logits(pooled)[0], 0.0, 100.0))
        if "gender" in fields:
            out.gender = _top(self.heads["gender"].probabilities(pooled))
        if "race" in fields:
            merged: dict[str, float] = {}
            for label, p in self.heads["race"].probabilities(pooled).items():
                merged[RACE_NAMES[label]] = merged.get(RACE_NAMES[label], 0.0) + p
            out.race = _top(merged)
        if "glasses" in fields:
            name, p = _top(self.heads["glasses"].probabilities(pooled))
            out.glasses = (GLASSES_CODES[name], p)
        if "expression" in fields:
            assert landmarks106 is not None
            out.expression = self._expression(pooled, landmarks106)
        if "faceshape" in fields:
            assert landmarks106 is not None
            out.faceshape = self._faceshape(pooled, landmarks106)
        if "qualities" in fields:
            assert measures is not None
            blur, illumination, incompleteness = measures
            kind = self.heads["type"].probabilities(pooled)
            out.qualities = Qualities(
                occlusion={
                    region: self.heads[f"occlusion.{region}"].probabilities(
                        features.region(self.cells[region])
                    )["occluded"]
                    for region in OCCLUSION_REGIONS
                },
                blur=blur,
                illumination=illumination,
                incompleteness=incompleteness,
                human=kind["human"],
                cartoon=kind["cartoon"],
            )
        return out

    def _expression(self, pooled: NDArray[np.float32], landmarks106: Points) -> tuple[int, float]:
        """0 none, 1 smile, 2 laugh: the smile head decides smile or not, then the open mouth decides
        smile or laugh. The probability is the returned value's under P(none) = 1 - p,
        P(smile) = p (1 - q), P(laugh) = p q; deciding in two steps keeps the smile head's own
        decision, which an argmax over the three would split."""
        smile = self.heads["smile"].probabilities(pooled)["smile"]
        rules = self.rules
        opened = _sigmoid((mouth_opening(landmarks106) - rules.laugh_opening) / rules.laugh_softness)
        if smile < 0.5:
            return 0, 1.0 - smile
        return (2, smile * opened) if opened >= 0.5 else (1, smile * (1.0 - opened))

    def _faceshape(self, pooled: NDArray[np.float32], landmarks106: Points) -> list[tuple[str, float]]:
        rules = self.rules
        triangle = _sigmoid((jaw_to_temple(landmarks106) - rules.triangle_ratio) / rules.triangle_softness)
        shapes = dict.fromkeys(FACESHAPE_ORDER, 0.0)
        shapes["triangle"] = triangle
        for label, p in self.heads["faceshape"].probabilities(pooled).items():
            shapes[FACESHAPE_NAMES[label]] += p * (1.0 - triangle)
        return list(shapes.items())


def _top(probabilities: dict[str, float]) -> tuple[str, float]:
    name = max(probabilities, key=probabilities.__getitem__)
    return name, probabilities[name]
