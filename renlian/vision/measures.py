"""Quality measures taken directly on the pixels: blur, illumination and completeness.

These need no learned model: each is a documented measurement whose direction is fixed by
construction (docs/attributes.md shows how each responds to controlled degradations).
"""

from __future__ import annotations

import cv2
import numpy as np

from renlian.vision.crop import similarity_to
from renlian.vision.faces import Face, Points
from renlian.vision.image import BGRImage
from renlian.vision.recognizer import ARCFACE_TEMPLATE

# The face in an ArcFace-aligned 112x112 crop, brows to chin and cheek to cheek, as a polygon.
FACE_ELLIPSE = np.asarray(cv2.ellipse2Poly((56, 62), (42, 54), 0, 0, 360, 10), np.float64)
# Inner face of an ArcFace-aligned 112x112 crop (brows to chin, cheek to cheek): background and hair
# would otherwise decide how sharp the "face" looks.
INNER_FACE = (slice(28, 108), slice(20, 92))


def blur(aligned: BGRImage, midpoint: float) -> float:
    """How blurred the face looks, in [0, 1]; 0 sharp, 1 blurred (Baidu's direction).

    The contrast-normalised Laplacian variance v of the inner face maps to 1 / (1 + (v / midpoint)^2).
    training/attributes sets `midpoint` to the median v of UTKFace faces blurred by a Gaussian of
    sigma 1.5 px at the crop's 112 px scale, so a face that soft scores 0.5. Normalising the contrast
    keeps a darker copy of a face as sharp as the original.
    """
    grey = cv2.cvtColor(aligned, cv2.COLOR_BGR2GRAY)[INNER_FACE].astype(np.float32)
    spread = float(grey.std())
    if spread < 1.0:
        return 1.0  # a flat patch has no detail at all
    variance = float(cv2.Laplacian((grey - grey.mean()) / spread, cv2.CV_32F).var())
    return float(1.0 / (1.0 + (variance / midpoint) ** 2))


def illumination(image: BGRImage, face: Face) -> float:
    """Mean luma (0-255) over the part of the face box inside the image."""
    height, width = image.shape[:2]
    x, y, w, h = (float(v) for v in face.box)
    left, top = max(0, int(np.floor(x))), max(0, int(np.floor(y)))
    right, bottom = min(width, int(np.ceil(x + w))), min(height, int(np.ceil(y + h)))
    if right <= left or bottom <= top:
        return 0.0
    region = image[top:bottom, left:right]
    luma = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    return float(luma.mean())


def incompleteness(image_shape: tuple[int, ...], kps5: Points) -> float:
    """Share of the face region that falls outside the image: 0 whole face, 1 none of it.

    The region is an ellipse fixed in the aligned crop's frame (FACE_ELLIPSE), mapped into the image
    through the five points, which the detector places even for a part of the face beyond the frame.
    (The dense landmarks' outline was tried first: it shrinks with the visible part of the face, so it
    rose with the first cut and then fell; bench/attributes.py measures this one.)
    """
    height, width = image_shape[:2]
    matrix = similarity_to(ARCFACE_TEMPLATE, kps5)
    # The hull drops ellipse2Poly's repeated closing vertex, which intersectConvexConvex misreads.
    region = cv2.convexHull((FACE_ELLIPSE @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)).reshape(-1, 2)
    total = float(cv2.contourArea(region))
    if total <= 1.0:
        return 0.0
    frame = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    inside, _ = cv2.intersectConvexConvex(region, frame)
    return float(np.clip(1.0 - inside / total, 0.0, 1.0))
