"""v3 detect, match and faceverify: /rest/2.0/face/v3/detect, /match and /faceverify."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api import operation as op
from renlian.api.deps import DetectCall, FaceverifyCall, MatchCall
from renlian.api.envelope import v3_ok
from renlian.api.operation import NUM, STR, Operation, Param, Values, arr, obj
from renlian.api.params import DETECT_IMAGE_LIMIT, FACEVERIFY_IMAGES
from renlian.api.services import Services, ServicesDep, log_id
from renlian.api.v3 import params as v3
from renlian.api.v3.shape import MESH_FIELD, analyzer_fields, face_entry
from renlian.core.controls import LIVENESS
from renlian.core.faces import Probe
from renlian.errors import ErrorCode, FaceApiError

MAX_FACES = 120
OPTIONS = ("COMMON", "GATE")

MAX_FACE_NUM = op.integer("max_face_num", 1, 1, MAX_FACES)
SORT = op.integer("face_sort_type", 0, 0, 1, description="0 by area, 1 by distance to the centre")
CROP = op.integer("display_corp_image", 0, 0, 1, description="1: each face's crop as base64")
# One liveness model serves both scenarios; the option is checked, not used.
OPTION = op.choice("option", OPTIONS, "COMMON")
# faceverify's body may carry eight images; each is held to detect's size.
VERIFY_IMAGE = op.text(
    "image",
    description=f"as detect's, under {DETECT_IMAGE_LIMIT} bytes of text",
    max_length=DETECT_IMAGE_LIMIT - 1,
    over=ErrorCode.IMAGE_SIZE_ERROR,
)
_FACES: tuple[Param[Any], ...] = (v3.FACE_FIELD, *v3.CONTROLS, CROP, SORT)

DETECT = Operation(
    f"{v3.PREFIX}/detect",
    "Detect faces: boxes, angles, landmarks and attributes; each face gets a face_token",
    (MAX_FACE_NUM, v3.IMAGE, v3.IMAGE_TYPE, *_FACES),
    obj(face_num=op.INT, face_list=arr(v3.FACE)),
    (*op.PARAMS, *v3.IMAGE_ERRORS),
    body="json",
)
MATCH = Operation(
    f"{v3.PREFIX}/match",
    "Compare the largest faces of two images; the body is a JSON array of two objects",
    (v3.IMAGE, v3.IMAGE_TYPE, *v3.CONTROLS),
    obj(score=NUM, face_list=arr(obj(face_token=STR))),
    (*op.PARAMS, *v3.IMAGE_ERRORS, ErrorCode.NOT_ENOUGH_IMAGES, *v3.CONTROL_ERRORS),
    body="json-array",
)
FACEVERIFY = Operation(
    f"{v3.PREFIX}/faceverify",
    "Liveness of 1 to 8 images; the body is a JSON array of image objects",
    (OPTION, VERIFY_IMAGE, v3.IMAGE_TYPE, *_FACES),
    obj(face_liveness=NUM, thresholds={"type": "object"}, face_list=arr(v3.FACE)),
    (*op.PARAMS, *v3.IMAGE_ERRORS, ErrorCode.NOT_ENOUGH_IMAGES),
    body="json-array",
)
OPERATIONS = (DETECT, MATCH, FACEVERIFY)

router = APIRouter()


async def _detect(
    svc: Services, app_id: str, values: Values, image: Param[str], *, max_faces: int, liveness: bool
) -> list[dict[str, Any]]:
    """detect's work for one image: faces as v3 shapes them, with their liveness if asked for."""
    chosen = values[v3.FACE_FIELD]
    fields = set(chosen)
    controls = v3.controls(values)
    landmarks, attributes = analyzer_fields(fields)
    crop = values[CROP] == 1
    centred = values[SORT] == 1
    ref = await v3.fetched(svc, v3.image(values, image))

    def run() -> list[dict[str, Any]]:
        photo = svc.ops.photo(app_id, ref)
        seen = svc.ops.detect(
            app_id,
            photo,
            max_faces,
            landmarks=landmarks,
            attributes=attributes,
            mesh=MESH_FIELD in fields,
            controls=controls,
        )
        if centred:
            height, width = photo.pixels.shape[:2]
            seen.sort(key=lambda s: _distance(s.face.box, width, height))
        entries = []
        for item in seen:
            entry = face_entry(item.face, item.token, item.location, photo.pixels, fields, crop=crop)
            if liveness:
                entry["liveness"] = {"livemapscore": round(svc.ops.liveness(photo, item.face), 6)}
            entries.append(entry)
        return entries

    return await svc.pools.inference.run(run)


def _distance(box: Any, width: int, height: int) -> float:
    cx, cy = float(box[0] + box[2] / 2), float(box[1] + box[3] / 2)
    return (cx - width / 2) ** 2 + (cy - height / 2) ** 2


@DETECT.route(router)
async def detect(request: Request, call: DetectCall, svc: ServicesDep) -> JSONResponse:
    values = DETECT.read(call.params)
    faces = await _detect(svc, call.app_id, values, v3.IMAGE, max_faces=values[MAX_FACE_NUM], liveness=False)
    return v3_ok(log_id(request), {"face_num": len(faces), "face_list": faces})


@MATCH.route(router)
async def match(request: Request, call: MatchCall, svc: ServicesDep) -> JSONResponse:
    items = call.items
    if items is None or len(items) != 2:
        raise FaceApiError(ErrorCode.NOT_ENOUGH_IMAGES, "match takes a JSON array of two image objects")
    read = [MATCH.read(item) for item in items]
    requests = [(await v3.fetched(svc, v3.image(values)), v3.controls(values)) for values in read]

    def probe(index: int) -> Probe:
        ref, controls = requests[index]
        try:
            return svc.ops.probe(call.app_id, svc.ops.photo(call.app_id, ref), controls)
        except FaceApiError as exc:
            raise FaceApiError(
                exc.error, f"image {index}: {exc.detail or exc.error.v3_message}", field=exc.field
            ) from exc

    first, second = await asyncio.gather(*(svc.pools.inference.run(probe, i) for i in range(2)))
    result = {
        "score": svc.recognition.similarity(first, second),
        "face_list": [{"face_token": first.token}, {"face_token": second.token}],
    }
    return v3_ok(log_id(request), result)


@FACEVERIFY.route(router)
async def faceverify(request: Request, call: FaceverifyCall, svc: ServicesDep) -> JSONResponse:
    """Single-image liveness: our liveness model's score for each image's largest face."""
    items = call.items if call.items is not None else [call.params]
    if not 1 <= len(items) <= FACEVERIFY_IMAGES:
        raise FaceApiError(ErrorCode.NOT_ENOUGH_IMAGES, f"faceverify takes 1 to {FACEVERIFY_IMAGES} images")
    faces = []
    for values in [FACEVERIFY.read(item) for item in items]:
        found = await _detect(svc, call.app_id, values, VERIFY_IMAGE, max_faces=1, liveness=True)
        if not found:
            raise FaceApiError(ErrorCode.FACE_NOT_FOUND)
        faces.append(found[0])
    thresholds = {"frr_1e-4": LIVENESS["LOW"], "frr_1e-3": LIVENESS["NORMAL"], "frr_1e-2": LIVENESS["HIGH"]}
    best = max(face["liveness"]["livemapscore"] for face in faces)
    return v3_ok(log_id(request), {"face_liveness": best, "thresholds": thresholds, "face_list": faces})
