"""1:1 comparison: /rest/2.0/face/v2/match scores every pair of the images' largest faces."""

from __future__ import annotations

import asyncio
import json
from itertools import combinations
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api import operation as op
from renlian.api.attributes import qualities_body
from renlian.api.deps import MatchCall
from renlian.api.envelope import LIVENESS, format_liveness, ok
from renlian.api.operation import INT, NUM, Operation, Param, arr, obj
from renlian.api.params import MATCH_IMAGES_LIMIT
from renlian.api.services import ServicesDep, log_id
from renlian.api.v2 import params as v2
from renlian.core.controls import NO_CONTROLS
from renlian.core.faces import Probe
from renlian.errors import ErrorCode, FaceApiError
from renlian.vision.image import split_images

MAX_IMAGES = 10
QUALITIES = "qualities"
EXT_FIELDS = frozenset({QUALITIES})

_ENTRY = rf"\s*(?:{LIVENESS})?\s*"


def _checked(value: str) -> list[bool]:
    return [entry.strip() == LIVENESS for entry in value.split(",")]


IMAGES = v2.images(
    MATCH_IMAGES_LIMIT, f"base64 images joined by commas, under {MATCH_IMAGES_LIMIT} bytes in all"
)
EXT = op.choices("ext_fields", sorted(EXT_FIELDS))
# Per image position, whether to check its liveness.
IMAGE_LIVENESS = Param(
    "image_liveness",
    _checked,
    default=[],
    description='e.g. "faceliveness,faceliveness" or ",faceliveness"',
    pattern=f"{_ENTRY}(?:,{_ENTRY})*",
)
MATCH = Operation(
    "/rest/2.0/face/v2/match",
    "Score every pair of 2 to 10 images",
    (IMAGES, EXT, IMAGE_LIVENESS),
    obj(
        result_num=INT, result=arr(obj(index_i=INT, index_j=INT, score=NUM)), ext_info=arr({"type": "object"})
    ),
    (*op.PARAMS, *op.IMAGE, ErrorCode.NOT_ENOUGH_IMAGES, ErrorCode.PARAM_TOO_LONG),
    methods=("get", "post"),
)
OPERATIONS = (MATCH,)

router = APIRouter()


@MATCH.route(router)
async def match(request: Request, call: MatchCall, svc: ServicesDep) -> JSONResponse:
    values = MATCH.read(call.params)
    images = split_images(values[IMAGES])
    if len(images) < 2:
        raise FaceApiError(ErrorCode.NOT_ENOUGH_IMAGES)
    if len(images) > MAX_IMAGES:
        raise FaceApiError(ErrorCode.PARAM_TOO_LONG, f"at most {MAX_IMAGES} images per request")
    with_qualities = QUALITIES in values[EXT]
    entries = values[IMAGE_LIVENESS]
    if len(entries) > len(images):
        raise FaceApiError(ErrorCode.INVALID_PARAM, "image_liveness has more entries than there are images")
    checked = {i for i, wanted in enumerate(entries) if wanted}

    def probe(index: int) -> Probe:
        try:
            photo = svc.ops.base64_photo(images[index])
            return svc.ops.probe(
                call.app_id, photo, NO_CONTROLS, liveness=index in checked, qualities=with_qualities
            )
        except FaceApiError as exc:
            raise FaceApiError(exc.error, f"image {index}: {exc.detail or exc.error.message}") from exc

    probes = await asyncio.gather(*(svc.pools.inference.run(probe, i) for i in range(len(images))))
    result = [
        {"index_i": i, "index_j": j, "score": svc.recognition.similarity(probes[i], probes[j])}
        for i, j in combinations(range(len(images)), 2)
    ]
    body: dict[str, Any] = {"result_num": len(result), "result": result}
    ext_info: dict[str, str] = {}
    if checked:
        # One entry per image, "0" where the image was not checked: "0,0.9999" in Baidu's example.
        ext_info[LIVENESS] = ",".join(
            "0" if probe.examined.liveness is None else format_liveness(probe.examined.liveness)
            for probe in probes
        )
    if with_qualities:
        # The spec types this a string: a JSON array with each image's qualities, in image order.
        measured = [probe.examined.qualities for probe in probes]
        ext_info[QUALITIES] = json.dumps(
            [qualities_body(q) if q is not None else None for q in measured], separators=(",", ":")
        )
    if ext_info:
        body["ext_info"] = [ext_info]
    return ok(log_id(request), body)
