"""Value types that flow between the vision stages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from renlian.vision.attributes import Attributes

Points = NDArray[np.float32]


@dataclass
class Pose:
    """Head pose in degrees, in Baidu's conventions.

    yaw: negative when the face turns to the image's left, positive to its right;
    pitch: negative looking up, positive looking down; roll: positive for a clockwise in-plane tilt.
    """

    yaw: float
    pitch: float
    roll: float

    @property
    def rotation_angle(self) -> int:
        """Baidu's rotation_angle: the in-plane (roll) angle in whole degrees, clockwise positive."""
        return round(self.roll)


@dataclass
class Face:
    """One detected face, in the coordinates of the image it was found in."""

    box: NDArray[np.float32]  # x, y, width, height
    score: float
    # Five points from the detector: the eye on the image's left, the other eye, nose tip, then the
    # mouth corners, left to right in the image.
    kps5: Points
    pose: Pose | None = None
    landmarks106: Points | None = None
    # The 478-point face mesh (renlian.vision.mesh), measured only for v3's landmark150.
    mesh: Points | None = None
    embedding: NDArray[np.float32] | None = field(default=None, repr=False)
    attributes: Attributes | None = None

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])
