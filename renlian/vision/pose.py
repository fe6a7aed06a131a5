"""Head pose from 3DDFA_V2: a 3D morphable model fitted by a MobileNet to a 120x120 face crop.

The network regresses 62 normalised parameters; the first 12 de-normalise to a 3x4 weak-perspective
camera matrix whose rotation gives yaw, pitch and roll. Only the pose is used here; the shape and
expression coefficients are ignored.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from renlian.models.runtime import onnx_session
from renlian.vision.crop import square_crop_transform, warp
from renlian.vision.faces import Face, Pose
from renlian.vision.image import BGRImage

INPUT_SIZE = 120


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """The parameter statistics ship as a pickle; allow only the numpy array constructors in it."""

    _ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a parameter file")
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray" if hasattr(np, "_core") else module
        return super().find_class(module, name)


def load_param_stats(path: Path) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    stats = _NumpyOnlyUnpickler(io.BytesIO(path.read_bytes())).load()
    return np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)


class PoseEstimator:
    def __init__(self, model: Path, param_stats: Path, *, threads: int) -> None:
        self._session = onnx_session(model, threads)
        self._input = self._session.get_inputs()[0].name
        self._mean, self._std = load_param_stats(param_stats)

    def __call__(self, image: BGRImage, face: Face) -> Pose:
        x, y, w, h = (float(v) for v in face.box)
        # 3DDFA_V2's own crop: a square 1.58 times the box's mean side, shifted down by 0.14 of it,
        # because the network was trained on crops that include the chin and forehead.
        side = (w + h) / 2
        matrix = square_crop_transform((x + w / 2, y + h / 2 + side * 0.14), side * 1.58, INPUT_SIZE)
        crop = warp(image, matrix, INPUT_SIZE)
        blob = ((crop.astype(np.float32) - 127.5) / 128.0).transpose(2, 0, 1)[None]
        params = self._session.run(None, {self._input: blob})[0][0] * self._std + self._mean
        return pose_from_camera(params[:12].reshape(3, 4))


def pose_from_camera(camera: NDArray[np.float32]) -> Pose:
    """Euler angles of the camera's rotation, converted to Baidu's signs (see Pose)."""
    r1, r2 = camera[0, :3], camera[1, :3]
    r1 = r1 / np.linalg.norm(r1)
    r2 = r2 / np.linalg.norm(r2)
    rotation = np.stack([r1, r2, np.cross(r1, r2)])
    sin_yaw = float(np.clip(rotation[2, 0], -1.0, 1.0))
    yaw = math.asin(sin_yaw)
    cos_yaw = math.cos(yaw)
    if cos_yaw < 1e-3:
        pitch = math.atan2(-rotation[0, 1], -rotation[0, 2])
        roll = 0.0
    else:
        pitch = math.atan2(rotation[2, 1] / cos_yaw, rotation[2, 2] / cos_yaw)
        roll = math.atan2(rotation[1, 0] / cos_yaw, rotation[0, 0] / cos_yaw)
    # 3DDFA's yaw grows as the face turns towards the image's left, Baidu's towards its right: on
    # GENKI-4K the raw yaw correlated negatively with the nose tip's offset from the face outline's
    # middle (bench/pose_eval.py, docs/pose.md). Pitch already matches: it grows looking down.
    # 3DDFA's roll grows counter-clockwise in the image; Baidu's grows clockwise.
    return Pose(yaw=-math.degrees(yaw), pitch=math.degrees(pitch), roll=-math.degrees(roll))
