"""Similarity-transform crops: the one geometric primitive the landmark, pose and embedding stages share."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from renlian.vision.image import BGRImage

Affine = NDArray[np.float64]


def square_crop_transform(center: tuple[float, float], side: float, output: int) -> Affine:
    """The 2x3 matrix mapping a square of `side` pixels around `center` onto an output x output image."""
    scale = output / side
    return np.array(
        [[scale, 0.0, output / 2 - center[0] * scale], [0.0, scale, output / 2 - center[1] * scale]]
    )


def warp(image: BGRImage, matrix: Affine, output: int) -> BGRImage:
    warped: BGRImage = cv2.warpAffine(
        image, matrix, (output, output), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    return warped


def invert_points(points: NDArray[np.float32], matrix: Affine) -> NDArray[np.float32]:
    """Map points from crop coordinates back into the source image."""
    inverse = cv2.invertAffineTransform(matrix)
    ones = np.ones((points.shape[0], 1), dtype=np.float64)
    mapped = np.hstack([points.astype(np.float64), ones]) @ inverse.T
    return mapped.astype(np.float32)


def similarity_to(source: NDArray[np.float32], target: NDArray[np.float32]) -> Affine:
    """Least-squares similarity transform (Umeyama) taking source points onto target points."""
    src, dst = source.astype(np.float64), target.astype(np.float64)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rotation = u @ sign @ vt
    scale = float(np.trace(np.diag(singular) @ sign)) / float(src_c.var(axis=0).sum())
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])
