"""Face detection with YuNet (OpenCV Zoo), through OpenCV's FaceDetectorYN.

FaceDetectorYN keeps the input size as mutable state, so one instance may serve only one thread at a
time; each inference thread gets its own (they are 230 KB). Large images are shrunk so that the
longer side is at most `max_side` before detection, which bounds the cost of a 12-megapixel photo.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from renlian.vision.faces import Face
from renlian.vision.image import BGRImage


class YuNetDetector:
    def __init__(self, model: Path, *, max_side: int, score_threshold: float) -> None:
        self._model = str(model)
        self._max_side = max_side
        self._score_threshold = score_threshold
        self._local = threading.local()
        self._instance()  # fail at load time, not on the first request

    def _instance(self) -> cv2.FaceDetectorYN:
        detector: cv2.FaceDetectorYN | None = getattr(self._local, "detector", None)
        if detector is None:
            detector = cv2.FaceDetectorYN.create(
                self._model, "", (320, 320), self._score_threshold, 0.3, 5000
            )
            self._local.detector = detector
        return detector

    def detect(self, image: BGRImage) -> list[Face]:
        """All faces above the score threshold, largest first."""
        height, width = image.shape[:2]
        scale = min(1.0, self._max_side / max(height, width))
        resized = image
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            resized = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        detector = self._instance()
        detector.setInputSize((resized.shape[1], resized.shape[0]))
        _, rows = detector.detect(resized)
        faces = []
        for row in rows if rows is not None else []:
            values = np.asarray(row[:14], dtype=np.float32) / scale
            faces.append(
                Face(
                    box=values[:4],
                    score=float(row[14]),
                    kps5=values[4:14].reshape(5, 2),
                )
            )
        faces.sort(key=lambda face: face.area, reverse=True)
        return faces
