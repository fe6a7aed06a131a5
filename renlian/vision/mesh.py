"""MediaPipe's face mesh with iris refinement: 478 dense points, the source of v3's landmark150.

Two TFLite models from the pinned mediapipe wheel, run on LiteRT (ai-edge-litert) without the
mediapipe runtime, the way MediaPipe's own iris pipeline chains them:

1. face_landmark (468 points) on a 192x192 crop, square, 1.5 times the face, turned so that the eyes
   lie level. The first crop comes from the detector's box and eyes; the second from the first
   pass's own points (MediaPipe's tracking step), which frames the face the way the model was
   trained to see it.
2. iris_landmark on a 64x64 crop around each eye, 2.3 times its corner-to-corner width, turned
   along that line; the second eye is mirrored, since the model knows one eye. It returns 71 points
   of lids, eye region and brow, which replace the mesh's own there, and 5 iris points (centre, then
   the edges), appended as points 468-472 (the eye on the image's left) and 473-477.

Both models take RGB scaled to [0, 1] and answer in crop pixels (x, y and a depth, unused).
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter
from numpy.typing import NDArray

from renlian.vision.crop import Affine, invert_points
from renlian.vision.faces import Face, Points
from renlian.vision.image import BGRImage

MESH_INPUT = 192
IRIS_INPUT = 64
MESH_SCALE = 1.5
IRIS_SCALE = 2.3
POINTS = 478
# The mesh's outer eye corners (image left, image right): the line that turns the crop level.
EYE_LINE = (33, 263)
# Each eye's corners in the order its iris crop runs from left to right; the second is mirrored.
EYE_CORNERS = ((33, 133), (362, 263))
# Where the iris model's 71 eye-region points go in the mesh, for the first eye then the second
# (MediaPipe's update_face_landmarks_calculator): lower lid with corners, upper lid, four haloes
# around the eye, and the brow's two edges.
# fmt: off
EYE_REGION = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173, 130, 25, 110, 24,
     23, 22, 26, 112, 243, 247, 30, 29, 27, 28, 56, 190, 226, 31, 228, 229, 230, 231, 232, 233, 244,
     113, 225, 224, 223, 222, 221, 189, 35, 124, 46, 53, 52, 65, 143, 111, 117, 118, 119, 120, 121,
     128, 245, 156, 70, 63, 105, 66, 107, 55, 193),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398, 359, 255, 339,
     254, 253, 252, 256, 341, 463, 467, 260, 259, 257, 258, 286, 414, 446, 261, 448, 449, 450, 451,
     452, 453, 464, 342, 445, 444, 443, 442, 441, 413, 265, 353, 276, 283, 282, 295, 372, 340, 346,
     347, 348, 349, 350, 357, 465, 383, 300, 293, 334, 296, 336, 285, 417),
)
# fmt: on


def turned_crop(center: NDArray[np.float64], side: float, angle: float, size: int, *, mirror: bool) -> Affine:
    """The 2x3 matrix taking a square of `side` pixels around `center`, turned by `angle` radians,
    onto a size x size crop (mirrored left to right if asked)."""
    cos, sin = np.cos(angle), np.sin(angle)
    linear = (size / side) * np.array([[cos, sin], [-sin, cos]])
    if mirror:
        linear = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ linear
    shift = size / 2 - linear @ center
    return np.hstack([linear, shift[:, None]])


def _angle(start: NDArray[np.float64], end: NDArray[np.float64]) -> float:
    delta = end - start
    return float(np.arctan2(delta[1], delta[0]))


class FaceMesh:
    """478 points per face. LiteRT interpreters are not thread-safe: each thread gets its own pair."""

    def __init__(self, mesh: Path, iris: Path, *, threads: int) -> None:
        self._models = (mesh.read_bytes(), iris.read_bytes())
        self._threads = threads
        self._local = threading.local()
        self._interpreters()  # fail at load time, not on the first request

    def _interpreters(self) -> tuple[Interpreter, Interpreter]:
        pair: tuple[Interpreter, Interpreter] | None = getattr(self._local, "pair", None)
        if pair is None:
            mesh, iris = (
                Interpreter(model_content=model, num_threads=self._threads) for model in self._models
            )
            mesh.allocate_tensors()
            iris.allocate_tensors()
            pair = self._local.pair = (mesh, iris)
        return pair

    def __call__(self, image: BGRImage, face: Face) -> Points:
        mesh, iris = self._interpreters()
        x, y, w, h = (float(v) for v in face.box)
        center = np.array([x + w / 2, y + h / 2])
        side = MESH_SCALE * max(w, h)
        angle = _angle(face.kps5[0].astype(np.float64), face.kps5[1].astype(np.float64))
        for _ in range(2):
            matrix = turned_crop(center, side, angle, MESH_INPUT, mirror=False)
            points = _run(mesh, image, matrix, MESH_INPUT)[0][:, :2]
            found = invert_points(points, matrix).astype(np.float64)
            low, high = found.min(axis=0), found.max(axis=0)
            center, side = (low + high) / 2, MESH_SCALE * float(np.max(high - low))
            angle = _angle(found[EYE_LINE[0]], found[EYE_LINE[1]])
        out = np.zeros((POINTS, 2), np.float32)
        out[: len(found)] = found
        for eye, (start, end) in enumerate(EYE_CORNERS):
            first, last = found[start], found[end]
            side = IRIS_SCALE * float(np.linalg.norm(last - first))
            matrix = turned_crop((first + last) / 2, side, _angle(first, last), IRIS_INPUT, mirror=eye == 1)
            region, pupil = (
                invert_points(part[:, :2], matrix) for part in _run(iris, image, matrix, IRIS_INPUT)
            )
            out[list(EYE_REGION[eye])] = region
            out[468 + 5 * eye : 473 + 5 * eye] = pupil
        return out


def _run(interpreter: Interpreter, image: BGRImage, matrix: Affine, size: int) -> list[Points]:
    """The model's outputs for one crop, each as rows of (x, y, z) in crop pixels."""
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    blob = (crop[:, :, ::-1].astype(np.float32) / 255.0)[None]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], blob)
    interpreter.invoke()
    values = [
        interpreter.get_tensor(detail["index"]).reshape(-1) for detail in interpreter.get_output_details()
    ]
    # Largest first: the mesh's points before its one-logit face flag, the eye region before the iris.
    values.sort(key=len, reverse=True)
    return [v.reshape(-1, 3).astype(np.float32) for v in values if v.size % 3 == 0]
