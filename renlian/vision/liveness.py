"""Passive single-image liveness: does this face look like a live person, or a print or screen of one?

Two families live here:
- `LivenessScorer`: the print-attack model trained here on NUAA (renlian/models/weights/liveness.md),
  over one preprocessing step, `liveness_input`, shared with training: `.npz` colour-texture
  histograms (uniform LBP in YCrCb and HSV) with a logistic regression, or an `.onnx` small CNN.
- `MiniFasScorer`: minivision's MiniFASNet pair (Apache-2.0, trained by its authors on print and
  screen replay attacks; weights/minifasnet.md), over `minifas_input`, their crop rule on a square;
  `ServedLiveness` calibrates its score (`calibrated`) and is what the service answers.

Either score is a risk signal, not a security guarantee: masks, 3D heads and injected streams were
never measured (docs/liveness.md).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from renlian.models.runtime import onnx_session
from renlian.vision.faces import Face
from renlian.vision.image import BGRImage

MINIFAS_SIZE = 80
# YuNet's box is ~1.3x taller than wide; MiniFASNet was trained on crops around RetinaFace boxes,
# which are square. Measured on NUAA, LFW and SCUT-FBP5500 (training/liveness_replay/boxes.py):
# RetinaFace's side is 0.86-0.90x YuNet's longer side (IQR 0.05) and its centre 0.06 of that side
# lower (UTKFace's tight 200 px crops, where both boxes meet the image edge, differ: 0.96 and 0.01).
MINIFAS_SIDE = 0.90
MINIFAS_DROP = 0.06

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


def square_box(box: NDArray[np.float32]) -> tuple[float, float, float]:
    """Centre and side of the square every MiniFASNet crop is cut around.

    It depends only on the box's centre and its longer side, so a tall narrow box (a face cut by the
    image edge, a detector's odd guess) gives the same crop as the square of its longer side: the
    models' answers move a lot with the crop's aspect ratio, which a square rules out.
    """
    x, y, w, h = (float(v) for v in box)
    longer = max(w, h, 1.0)
    return x + w / 2, y + h / 2 + MINIFAS_DROP * longer, MINIFAS_SIDE * longer


def minifas_input(image: BGRImage, face: Face, scale: float) -> BGRImage:
    """The 80x80 BGR crop one MiniFASNet model sees: `scale` times the square around the face.

    Upstream's rule (src/generate_patches.py, which also made their training crops): the scale
    shrinks until the window fits the image, and a window crossing an edge slides back inside rather
    than being padded, so a face near the edge sees more of the other side, never a black band. The
    window stays square because the box is made square first.
    """
    height, width = image.shape[:2]
    cx, cy, side = square_box(face.box)
    scale = min((height - 1) / side, (width - 1) / side, scale)
    half = side * scale / 2
    left, top, right, bottom = cx - half, cy - half, cx + half, cy + half
    if left < 0:
        right, left = right - left, 0.0
    if top < 0:
        bottom, top = bottom - top, 0.0
    if right > width - 1:
        left, right = left - (right - width + 1), float(width - 1)
    if bottom > height - 1:
        top, bottom = top - (bottom - height + 1), float(height - 1)
    region = image[int(top) : int(bottom) + 1, int(left) : int(right) + 1]
    # Bilinear, as upstream's cv2.resize default: the models learnt the moire this sampling leaves.
    return cv2.resize(region, (MINIFAS_SIZE, MINIFAS_SIZE), interpolation=cv2.INTER_LINEAR)


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


# The bundled MiniFASNet files (renlian.models.registry.BUNDLED) and the crop scale each was trained on.
MINIFAS_MODELS = (("minifasnet_v2", 2.7), ("minifasnet_v1se", 4.0))


class MiniFasScorer:
    """minivision's two MiniFASNet models, each on its own crop scale, averaged as upstream's test.py
    does: the mean probability of their "live" class (index 1 of 3; upstream leaves the two attack
    classes unnamed)."""

    def __init__(self, paths: dict[str, Path], *, threads: int) -> None:
        self._nets = [(onnx_session(paths[name], threads), scale) for name, scale in MINIFAS_MODELS]

    def single(self, index: int) -> Callable[[BGRImage, Face], float]:
        """One of the two models alone (for the bench's comparison)."""
        session, scale = self._nets[index]
        return lambda image, face: _live_probability(session, minifas_input(image, face, scale))

    def raw(self, image: BGRImage, face: Face) -> float:
        return sum(self.single(i)(image, face) for i in range(len(self._nets))) / len(self._nets)


def _live_probability(session: Any, crop: BGRImage) -> float:
    # BGR 0-255 floats, as upstream's ToTensor without its division (their "modify by zkx").
    (out,) = session.run(None, {"bgr": cnn_input(crop)})
    return float(np.asarray(out)[0, 1])


# (raw, served) knots from `python -m bench.liveness_replay --fit-calibration`: on NUAA's live webcam
# frames, 1% score below raw 0.6758 (served 0.9, HIGH, Baidu's frr_1e-2) and none below raw 0.4998
# (served 0.3, NORMAL, frr_1e-3); LOW (0.05, frr_1e-4) is left at raw 0.05, as 1e-4 cannot be measured.
CALIBRATION = ((0.0, 0.0), (0.05, 0.05), (0.4998, 0.3), (0.6758, 0.9), (1.0, 1.0))


def calibrated(raw: float) -> float:
    """The served score: MiniFASNet's averaged live probability mapped onto liveness_control's scale.

    A piecewise-linear, increasing map through CALIBRATION's (raw, served) knots, so that each
    documented threshold (LOW 0.05, NORMAL 0.3, HIGH 0.9, and 0.5) sits where the knots put it
    (docs/liveness.md says where that is and what it was measured on).
    """
    raw_knots, served_knots = zip(*CALIBRATION, strict=True)
    return float(np.interp(raw, raw_knots, served_knots))


class ServedLiveness:
    """The score behind faceverify's face_liveness, liveness_control, image_liveness and
    ext_fields=faceliveness: MiniFASNet's averaged live probability, calibrated."""

    def __init__(self, paths: dict[str, Path], *, threads: int) -> None:
        self.minifas = MiniFasScorer(paths, threads=threads)

    def __call__(self, image: BGRImage, face: Face) -> float:
        return calibrated(self.minifas.raw(image, face))
