"""Face detection: /rest/2.0/face/v1/detect (SDK <= 1.6.7) and /rest/2.0/face/v2/detect (SDK >= 1.6.8)."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api import operation as op
from renlian.api.attributes import attribute_body
from renlian.api.deps import DetectCall
from renlian.api.envelope import ok
from renlian.api.operation import Operation, arr, obj
from renlian.api.params import DETECT_IMAGE_LIMIT
from renlian.api.services import ServicesDep, log_id
from renlian.api.v2 import params as v2
from renlian.errors import ErrorCode
from renlian.vision.attributes import ATTRIBUTE_FIELDS
from renlian.vision.faces import Face, Points
from renlian.vision.landmarks import LANDMARK4_FROM_106, LANDMARK72_FROM_106, project

# Every face_fields value the spec names.
FACE_FIELDS = ATTRIBUTE_FIELDS | {"landmark"}
MAX_FACES = 50

IMAGE = op.text(
    "image",
    description=f"base64 image, under {DETECT_IMAGE_LIMIT} bytes of text",
    max_length=DETECT_IMAGE_LIMIT - 1,
    over=ErrorCode.IMAGE_SIZE_ERROR,
)
MAX_FACE_NUM = op.integer("max_face_num", 1, 1, MAX_FACES)
FIELDS = op.choices("face_fields", sorted(FACE_FIELDS))
DETECT = Operation(
    "/rest/2.0/face/v2/detect",
    "Detect faces: boxes, pose, landmarks and attributes",
    (IMAGE, MAX_FACE_NUM, FIELDS),
    obj(result_num=op.INT, result=arr(v2.FACE)),
    (*op.PARAMS, *op.IMAGE),
    methods=("get", "post"),
    # SDK <= 1.6.7's path.
    also=("/rest/2.0/face/v1/detect",),
)
OPERATIONS = (DETECT,)

router = APIRouter()


@DETECT.route(router)
async def detect(request: Request, call: DetectCall, svc: ServicesDep) -> JSONResponse:
    values = DETECT.read(call.params)
    image, max_faces, chosen = values[IMAGE], values[MAX_FACE_NUM], values[FIELDS]
    fields = set(chosen)
    with_landmarks = "landmark" in fields
    attributes = frozenset(fields & ATTRIBUTE_FIELDS)

    def run() -> tuple[list[Face], int, int]:
        photo = svc.ops.base64_photo(image)
        found = svc.ops.faces(photo, max_faces, landmarks=with_landmarks, attributes=attributes)
        return found, photo.pixels.shape[1], photo.pixels.shape[0]

    faces, width, height = await svc.pools.inference.run(run)
    result = [face_result(face, width, height, landmarks=with_landmarks) for face in faces]
    return ok(log_id(request), {"result_num": len(result), "result": result})


def face_result(face: Face, width: int, height: int, *, landmarks: bool) -> dict[str, Any]:
    x0, y0 = max(0.0, float(face.box[0])), max(0.0, float(face.box[1]))
    x1 = min(float(width), float(face.box[0] + face.box[2]))
    y1 = min(float(height), float(face.box[1] + face.box[3]))
    assert face.pose is not None
    body: dict[str, Any] = {
        "location": {
            "left": round(x0),
            "top": round(y0),
            "width": round(x1 - x0),
            "height": round(y1 - y0),
        },
        "face_probability": round(face.score, 6),
        "rotation_angle": face.pose.rotation_angle,
        "yaw": round(face.pose.yaw, 4),
        "pitch": round(face.pose.pitch, 4),
        "roll": round(face.pose.roll, 4),
    }
    if landmarks and face.landmarks106 is not None:
        body["landmark"] = _points(project(face.landmarks106, LANDMARK4_FROM_106), width, height)
        body["landmark72"] = _points(project(face.landmarks106, LANDMARK72_FROM_106), width, height)
    if face.attributes is not None:
        body.update(attribute_body(face.attributes))
    return body


def _points(points: Points, width: int, height: int) -> list[dict[str, int]]:
    """Integer pixel coordinates, clamped into the image: the spec types them uint32."""
    clamped = np.clip(np.rint(points), 0, [width - 1, height - 1]).astype(int)
    return [{"x": int(x), "y": int(y)} for x, y in clamped]
