"""v3's answer shapes for a face: location, angle, and the face_field attributes by v3's names."""

from __future__ import annotations

import base64
from typing import Any

import cv2
import numpy as np

from renlian.core.controls import INCOMPLETE
from renlian.core.facetokens import Location
from renlian.vision.attributes import Attributes
from renlian.vision.faces import Face, Points
from renlian.vision.image import BGRImage
from renlian.vision.landmark150 import landmark150
from renlian.vision.landmarks import LANDMARK4_FROM_106, LANDMARK72_FROM_106, project

DIGITS = 6
# v3 face_field -> the analyzer's attribute field behind it (None: landmarks). Older spellings too.
FIELDS: dict[str, str | None] = {
    "age": "age",
    "beauty": "beauty",
    "expression": "expression",
    "face_shape": "faceshape",
    "faceshape": "faceshape",
    "gender": "gender",
    "glasses": "glasses",
    "race": "race",
    "quality": "qualities",
    "face_type": "qualities",
    "facetype": "qualities",
    "landmark": None,
    "landmark72": None,
    "landmark150": None,
    "eye_status": "eye_status",
    "emotion": "emotion",
    "mask": "mask",
    "spoofing": "spoofing",
}
# The field answered by the face mesh, not by the 106-point model behind the other landmarks.
MESH_FIELD = "landmark150"
EXPRESSIONS = ("none", "smile", "laugh")
GLASSES = ("none", "common", "sun")
OCCLUSION_NAMES = {"chin": "chin_contour"}


def analyzer_fields(fields: set[str]) -> tuple[bool, frozenset[str]]:
    """(106-point landmarks wanted, the analyzer's attribute fields) for v3 face_field names."""
    wanted = {FIELDS[name] for name in fields - {MESH_FIELD}}
    return None in wanted, frozenset(name for name in wanted if name is not None)


def location(where: Location) -> dict[str, Any]:
    return {
        "left": where.left,
        "top": where.top,
        "width": where.width,
        "height": where.height,
        "rotation": where.rotation if where.rotation is not None else 0,
    }


def angle(face: Face) -> dict[str, float]:
    assert face.pose is not None
    return {
        "yaw": round(face.pose.yaw, 2),
        "pitch": round(face.pose.pitch, 2),
        "roll": round(face.pose.roll, 2),
    }


def face_entry(
    face: Face, token: str, where: Location, pixels: BGRImage, fields: set[str], *, crop: bool = False
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "face_token": token,
        "location": location(where),
        "face_probability": round(face.score, 4),
        "angle": angle(face),
    }
    if face.landmarks106 is not None and fields & {"landmark", "landmark72"}:
        entry["landmark"] = _points(project(face.landmarks106, LANDMARK4_FROM_106))
        entry["landmark72"] = _points(project(face.landmarks106, LANDMARK72_FROM_106))
    if face.mesh is not None and MESH_FIELD in fields:
        entry[MESH_FIELD] = {
            name: {"x": round(x, 2), "y": round(y, 2)} for name, (x, y) in landmark150(face.mesh).items()
        }
    if face.attributes is not None:
        entry.update(attributes(face.attributes, fields))
    if crop:
        entry["corp_image_base64"] = face_crop(face, pixels)
    return entry


def attributes(found: Attributes, fields: set[str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if found.age is not None:
        body["age"] = round(found.age)
    if found.beauty is not None:
        body["beauty"] = round(found.beauty, 2)
    if found.expression is not None:
        kind, probability = found.expression
        body["expression"] = {"type": EXPRESSIONS[kind], "probability": round(probability, DIGITS)}
    if found.faceshape is not None:
        name, probability = max(found.faceshape, key=lambda item: item[1])
        body["face_shape"] = {"type": name, "probability": round(probability, DIGITS)}
    if found.gender is not None:
        body["gender"] = {"type": found.gender[0], "probability": round(found.gender[1], DIGITS)}
    if found.glasses is not None:
        body["glasses"] = {"type": GLASSES[found.glasses[0]], "probability": round(found.glasses[1], DIGITS)}
    if found.race is not None:
        body["race"] = {"type": found.race[0], "probability": round(found.race[1], DIGITS)}
    if found.eye_status is not None:
        left, right = found.eye_status
        body["eye_status"] = {"left_eye": round(left, DIGITS), "right_eye": round(right, DIGITS)}
    if found.emotion is not None:
        body["emotion"] = {"type": found.emotion[0], "probability": round(found.emotion[1], DIGITS)}
    if found.mask is not None:
        body["mask"] = {"type": found.mask[0], "probability": round(found.mask[1], DIGITS)}
    if found.spoofing is not None:
        body["spoofing"] = round(found.spoofing, DIGITS)
    qualities = found.qualities
    if qualities is not None and "quality" in fields:
        body["quality"] = {
            "occlusion": {
                OCCLUSION_NAMES.get(k, k): round(v, DIGITS) for k, v in qualities.occlusion.items()
            },
            "blur": round(qualities.blur, DIGITS),
            "illumination": round(qualities.illumination),
            # v3 counts the other way from v2: 1 is a whole face, 0 one that crosses the border.
            "completeness": 0 if qualities.incompleteness >= INCOMPLETE else 1,
        }
    if qualities is not None and fields & {"face_type", "facetype"}:
        cartoon = qualities.cartoon > qualities.human
        body["face_type"] = {
            "type": "cartoon" if cartoon else "human",
            "probability": round(max(qualities.cartoon, qualities.human), DIGITS),
        }
    return body


def face_crop(face: Face, pixels: BGRImage) -> str:
    """The face's box cut from the image, as base64 JPEG (display_corp_image)."""
    height, width = pixels.shape[:2]
    x, y, w, h = (round(float(v)) for v in face.box)
    cut = pixels[max(0, y) : min(height, y + h), max(0, x) : min(width, x + w)]
    ok, jpeg = cv2.imencode(".jpg", cut, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return base64.b64encode(jpeg.tobytes()).decode()


def _points(points: Points) -> list[dict[str, float]]:
    rounded = np.round(points.astype(np.float64), 2)
    return [{"x": float(x), "y": float(y)} for x, y in rounded]
