"""Passive single-image liveness: does this face look like a live person or a printed photo of one?

Trained and measured on NUAA (printed-photo attacks only); see renlian/models/weights/liveness.md.
The score is a risk signal, not a security guarantee: screens, masks and deepfakes were never seen.

Two model kinds share one preprocessing step, `liveness_input`, so training and serving cannot drift:
- `.onnx`: a small CNN that takes the crop itself;
- `.npz`: colour-texture histograms (uniform LBP in YCrCb and HSV) with a logistic regression.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from renlian.models.runtime import onnx_session
from renlian.vision.faces import Face
from renlian.vision.image import BGRImage

INPUT_SIZE = 112
# A print attack shows itself around the face as much as on it: the photo's edge, the hand holding
# it, the flat lighting of paper. The crop therefore spans twice the face box, not the box alone.
CONTEXT = 2.0
# Score at or above which a face is taken as live when the model file carries no threshold.
DEFAULT_THRESHOLD = 0.5


def liveness_input(image: BGRImage, face: Face) -> BGRImage:
    """The square crop every liveness model sees: INPUT_SIZE x INPUT_SIZE x 3, 8-bit BGR.

    Outside the image the crop is black rather than replicated: replicated edge pixels would paint
    streaks that look like the straight border of a held-up photo.
    """
    x, y, w, h = (float(v) for v in face.box)
    side = CONTEXT * max(w, h, 1.0)
    left, top = x + w / 2 - side / 2, y + h / 2 - side / 2
    scale = INPUT_SIZE / side
    height, width = image.shape[:2]
    # Only the part of the square inside the image is resized (a view, no copy), then placed on black:
    # padding first would allocate the full square, ~100 MB for a close-up in a 12-megapixel photo.
    x0, y0 = max(int(np.floor(left)), 0), max(int(np.floor(top)), 0)
    x1, y1 = min(int(np.ceil(left + side)), width), min(int(np.ceil(top + side)), height)
    out = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    dx0, dy0 = max(round((x0 - left) * scale), 0), max(round((y0 - top) * scale), 0)
    dx1 = min(round((x1 - left) * scale), INPUT_SIZE)
    dy1 = min(round((y1 - top) * scale), INPUT_SIZE)
    if x1 > x0 and y1 > y0 and dx1 > dx0 and dy1 > dy0:
        # Area averaging when shrinking (the usual case: a ~400 px square to 112): bilinear sampling
        # would alias the paper's print pattern into noise that differs from camera to camera.
        interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
        region = image[y0:y1, x0:x1]
        out[dy0:dy1, dx0:dx1] = cv2.resize(region, (dx1 - dx0, dy1 - dy0), interpolation=interpolation)
    return out


def _uniform_lbp_table() -> NDArray[np.int64]:
    """Map the 256 8-neighbour codes onto 59 bins: the 58 uniform patterns, then one for the rest."""
    table = np.full(256, 58, dtype=np.int64)
    index = 0
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        transitions = sum(bits[i] != bits[(i + 1) % 8] for i in range(8))
        if transitions <= 2:
            table[code] = index
            index += 1
    return table


_LBP_TABLE = _uniform_lbp_table()
_LBP_BINS = 59
# Neighbour offsets (dy, dx), clockwise from the top-left; radius 1 on the pixel grid.
_OFFSETS = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _lbp_histogram(channel: NDArray[Any], step: int) -> NDArray[np.float32]:
    """Normalised histogram of uniform LBP codes with neighbours `step` pixels away."""
    c = channel.astype(np.int16)
    centre = c[step:-step, step:-step]
    h, w = centre.shape
    code = np.zeros((h, w), dtype=np.int64)
    for bit, (dy, dx) in enumerate(_OFFSETS):
        neighbour = c[step + dy * step : step + dy * step + h, step + dx * step : step + dx * step + w]
        code |= (neighbour >= centre).astype(np.int64) << bit
    hist = np.bincount(_LBP_TABLE[code].ravel(), minlength=_LBP_BINS).astype(np.float32)
    return hist / max(float(hist.sum()), 1.0)


def texture_features(crop: BGRImage) -> NDArray[np.float32]:
    """The classic model's descriptor for one `liveness_input` crop.

    Chroma is where a print differs most from skin (the printer's gamut and the paper's reflectance),
    so LBP runs on the luma and both chroma planes of YCrCb and on all three HSV planes, at two radii;
    the face centre (the middle half of the crop) gets histograms of its own.
    """
    ycrcb = cv2.cvtColor(crop, cv2.COLOR_BGR2YCrCb)
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    quarter = INPUT_SIZE // 4
    parts: list[NDArray[np.float32]] = []
    for planes in (ycrcb, hsv):
        for i in range(3):
            plane = np.ascontiguousarray(planes[:, :, i])
            centre = plane[quarter:-quarter, quarter:-quarter]
            for step in (1, 2):
                parts.append(_lbp_histogram(plane, step))
                parts.append(_lbp_histogram(centre, step))
    # The square root (Hellinger map) makes histogram differences behave linearly.
    return np.sqrt(np.concatenate(parts)).astype(np.float32)


def cnn_input(crop: BGRImage) -> NDArray[np.float32]:
    """One crop as the CNN's 1 x 3 x H x W float tensor, BGR 0-255; the graph scales it itself."""
    return np.ascontiguousarray(crop.transpose(2, 0, 1)[None].astype(np.float32))


class LivenessScorer:
    """Probability-like liveness score in [0, 1]; higher means more likely a live face.

    `threshold` is the operating point chosen in training (stored with the weights): scores at or above
    it count as live.
    """

    def __init__(self, model: Path, *, threads: int) -> None:
        self._model = model
        self.threshold = DEFAULT_THRESHOLD
        if model.suffix == ".onnx":
            self._session = onnx_session(model, threads)
            self._input_name = self._session.get_inputs()[0].name
            meta = self._session.get_modelmeta().custom_metadata_map
            self.threshold = float(meta.get("threshold", DEFAULT_THRESHOLD))
            self._linear: tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32], float] | None
            self._linear = None
        elif model.suffix == ".npz":
            with np.load(model) as data:
                self._linear = (
                    data["mean"].astype(np.float32),
                    data["scale"].astype(np.float32),
                    data["weights"].astype(np.float32),
                    float(data["bias"]),
                )
                self.threshold = float(data["threshold"])
        else:
            raise ValueError(f"unknown liveness model type: {model}")

    def __call__(self, image: BGRImage, face: Face) -> float:
        return self.score_crop(liveness_input(image, face))

    def score_crop(self, crop: BGRImage) -> float:
        """The score of one `liveness_input` crop (training checks the shipped file through this)."""
        if self._linear is not None:
            mean, scale, weights, bias = self._linear
            logit = float(((texture_features(crop) - mean) / scale) @ weights + bias)
        else:
            (out,) = self._session.run(None, {self._input_name: cnn_input(crop)})
            logit = float(np.asarray(out).reshape(-1)[0])
        return float(1.0 / (1.0 + np.exp(-np.clip(logit, -50.0, 50.0))))
