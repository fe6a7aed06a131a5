"""v3 detect, match and faceverify: /rest/2.0/face/v3/detect, /match and /faceverify."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api.deps import DetectCall, FaceverifyCall, MatchCall
from renlian.api.envelope import v3_ok
from renlian.api.params import DETECT_IMAGE_LIMIT, FACEVERIFY_IMAGES, Params, check_encoded_size
from renlian.api.services import Services, ServicesDep, log_id
from renlian.api.v3 import params as v3
from renlian.api.v3.shape import MESH_FIELD, analyzer_fields, face_entry, face_fields
from renlian.core.controls import LIVENESS
from renlian.core.faces import Probe
from renlian.errors import ErrorCode, FaceApiError
from renlian.vision.score import similarity_score

MAX_FACES = 120
OPTIONS = ("COMMON", "GATE")

router = APIRouter(prefix=v3.PREFIX)


async def _detect(
    svc: Services, app_id: str, p: Params, *, max_faces: int, liveness: bool
) -> list[dict[str, Any]]:
    """detect's work for one image: faces as v3 shapes them, with their liveness if asked for."""
    ref = v3.image(p)
    fields = face_fields(p)
    controls = v3.controls(p)
    landmarks, attributes = analyzer_fields(fields)
    crop = p.uint("display_corp_image", 0, minimum=0, maximum=1) == 1
    centred = p.uint("face_sort_type", 0, minimum=0, maximum=1) == 1
    ref = await v3.fetched(svc, ref)

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
                entry["liveness"] = {
                    "livemapscore": round(svc.analyzer.liveness_score(photo.pixels, item.face), 6)
                }
            entries.append(entry)
        return entries

    return await svc.pools.inference.run(run)


def _distance(box: Any, width: int, height: int) -> float:
    cx, cy = float(box[0] + box[2] / 2), float(box[1] + box[3] / 2)
    return (cx - width / 2) ** 2 + (cy - height / 2) ** 2


@router.post("/detect")
async def detect(request: Request, call: DetectCall, svc: ServicesDep) -> JSONResponse:
    max_faces = call.params.uint("max_face_num", 1, minimum=1, maximum=MAX_FACES)
    faces = await _detect(svc, call.app_id, call.params, max_faces=max_faces, liveness=False)
    return v3_ok(log_id(request), {"face_num": len(faces), "face_list": faces})


@router.post("/match")
async def match(request: Request, call: MatchCall, svc: ServicesDep) -> JSONResponse:
    items = call.items
    if items is None or len(items) != 2:
        raise FaceApiError(ErrorCode.NOT_ENOUGH_IMAGES, "match takes a JSON array of two image objects")
    requests = [(v3.image(item), v3.controls(item)) for item in items]
    requests = [(await v3.fetched(svc, ref), controls) for ref, controls in requests]

    def probe(index: int) -> Probe:
        ref, controls = requests[index]
        try:
            return svc.ops.probe(call.app_id, svc.ops.photo(call.app_id, ref), controls)
        except FaceApiError as exc:
            raise FaceApiError(
                exc.error, f"image {index}: {exc.detail or exc.error.v3_message}", field=exc.field
            ) from exc

    first, second = await asyncio.gather(*(svc.pools.inference.run(probe, i) for i in range(2)))
    cosine = float(first.examined.embedding @ second.examined.embedding)
    score = similarity_score(cosine, svc.analyzer.embedder.name)
    result = {"score": score, "face_list": [{"face_token": first.token}, {"face_token": second.token}]}
    return v3_ok(log_id(request), result)


@router.post("/faceverify")
async def faceverify(request: Request, call: FaceverifyCall, svc: ServicesDep) -> JSONResponse:
    """Single-image liveness: our liveness model's score for each image's largest face."""
    items = call.items if call.items is not None else [call.params]
    if not 1 <= len(items) <= FACEVERIFY_IMAGES:
        raise FaceApiError(ErrorCode.NOT_ENOUGH_IMAGES, f"faceverify takes 1 to {FACEVERIFY_IMAGES} images")
    for item in items:
        # One liveness model serves both scenarios; the option is checked, not used.
        item.choice("option", OPTIONS, "COMMON")
        # The body may carry eight images; each is held to detect's size.
        check_encoded_size(item.required("image"), DETECT_IMAGE_LIMIT)
    faces = []
    for item in items:
        found = await _detect(svc, call.app_id, item, max_faces=1, liveness=True)
        if not found:
            raise FaceApiError(ErrorCode.FACE_NOT_FOUND)
        faces.append(found[0])
    thresholds = {"frr_1e-4": LIVENESS["LOW"], "frr_1e-3": LIVENESS["NORMAL"], "frr_1e-2": LIVENESS["HIGH"]}
    best = max(face["liveness"]["livemapscore"] for face in faces)
    return v3_ok(log_id(request), {"face_liveness": best, "thresholds": thresholds, "face_list": faces})
