"""v3's quality_control and liveness_control: Baidu's published level thresholds over our measures.

quality_control fails a face whose occlusion of any region or blur is above the level's maximum,
whose illumination is below its minimum, or that is incomplete where the level asks for a complete
face. liveness_control fails a face whose liveness score is below the level's threshold. The
thresholds are Baidu's ([PRIV] in ../shared/spec/baidu-face-api-v3.md §1.7); the scores they are
compared with are ours: the occlusion heads and pixel measures of docs/attributes.md and the
liveness model of docs/liveness.md, so a level means what those figures say, not what it means on
Baidu's models (docs/compat.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from renlian.errors import ErrorCode, FaceApiError
from renlian.vision.attributes import Qualities

LEVELS = ("NONE", "LOW", "NORMAL", "HIGH")
# The share of the face region outside the image from which a face is incomplete: half a percent,
# well above the measure's rounding noise and below any real cut.
INCOMPLETE = 0.005


@dataclass(frozen=True)
class QualityLevel:
    max_occlusion: float
    min_illumination: float
    max_blur: float
    complete: bool


QUALITY = {
    "LOW": QualityLevel(0.8, 20, 0.8, False),
    "NORMAL": QualityLevel(0.6, 40, 0.6, False),
    "HIGH": QualityLevel(0.2, 100, 0.2, True),
}
LIVENESS = {"LOW": 0.05, "NORMAL": 0.3, "HIGH": 0.9}

# Each region's own code, in Baidu's order of the regions.
_OCCLUDED = {
    "left_eye": ErrorCode.LEFT_EYE_OCCLUSION,
    "right_eye": ErrorCode.RIGHT_EYE_OCCLUSION,
    "nose": ErrorCode.NOSE_OCCLUSION,
    "mouth": ErrorCode.MOUTH_OCCLUSION,
    "left_cheek": ErrorCode.LEFT_CHEEK_OCCLUSION,
    "right_cheek": ErrorCode.RIGHT_CHEEK_OCCLUSION,
    "chin": ErrorCode.CHIN_OCCLUSION,
}


@dataclass(frozen=True)
class Controls:
    quality: str = "NONE"
    liveness: str = "NONE"

    @property
    def needs_qualities(self) -> bool:
        return self.quality != "NONE"

    @property
    def needs_liveness(self) -> bool:
        return self.liveness != "NONE"


NO_CONTROLS = Controls()


def failure(controls: Controls, qualities: Qualities | None, liveness: float | None) -> FaceApiError | None:
    """Why a face fails its controls, or None if it passes."""
    if controls.needs_liveness:
        assert liveness is not None
        threshold = LIVENESS[controls.liveness]
        if liveness < threshold:
            return FaceApiError(
                ErrorCode.LIVENESS_CHECK_FAIL,
                f"liveness {liveness:.4f} is below {controls.liveness}'s {threshold}",
            )
    if controls.needs_qualities:
        assert qualities is not None
        level = QUALITY[controls.quality]
        for region, code in _OCCLUDED.items():
            if qualities.occlusion[region] > level.max_occlusion:
                return FaceApiError(
                    code, f"{region} occlusion {qualities.occlusion[region]:.2f} > {level.max_occlusion}"
                )
        if qualities.blur > level.max_blur:
            return FaceApiError(ErrorCode.FACE_FUZZY, f"blur {qualities.blur:.2f} > {level.max_blur}")
        if qualities.illumination < level.min_illumination:
            return FaceApiError(
                ErrorCode.FACE_LIGHT_NOT_GOOD,
                f"illumination {qualities.illumination:.0f} < {level.min_illumination}",
            )
        if level.complete and qualities.incompleteness >= INCOMPLETE:
            return FaceApiError(ErrorCode.INCOMPLETE_FACE, "the face crosses the image's border")
    return None
