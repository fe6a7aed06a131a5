"""1:1 comparison: /rest/2.0/face/v2/match scores every pair of the images' largest faces."""

from __future__ import annotations

import asyncio
import json
from itertools import combinations
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api.attributes import qualities_body
from renlian.api.deps import MatchCall
from renlian.api.envelope import LIVENESS, format_liveness, ok
from renlian.api.params import MATCH_IMAGES_LIMIT, check_encoded_size
from renlian.api.services import ServicesDep, log_id
from renlian.errors import ErrorCode, FaceApiError
from renlian.vision.image import split_images
from renlian.vision.recognizer import Embedding
from renlian.vision.score import similarity_score

MAX_IMAGES = 10
QUALITIES = "qualities"
EXT_FIELDS = frozenset({QUALITIES})

router = APIRouter()


@router.api_route("/rest/2.0/face/v2/match", methods=["GET", "POST"])
async def match(request: Request, call: MatchCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    field = p.first_of("images", "image")
    check_encoded_size(field, MATCH_IMAGES_LIMIT)
    images = split_images(field)
    if len(images) < 2:
        raise FaceApiError(ErrorCode.NOT_ENOUGH_IMAGES)
    if len(images) > MAX_IMAGES:
        raise FaceApiError(ErrorCode.PARAM_TOO_LONG, f"at most {MAX_IMAGES} images per request")
    with_qualities = QUALITIES in p.choices("ext_fields", EXT_FIELDS)
    checked = liveness_positions(p.optional("image_liveness"), len(images))

    def probe(index: int) -> tuple[Embedding, float | None, dict[str, Any] | None]:
        try:
            embedding, live, qualities = svc.analyzer.inspect(
                svc.decode(images[index]), liveness=index in checked, qualities=with_qualities
            )
            return embedding, live, (qualities_body(qualities) if qualities is not None else None)
        except FaceApiError as exc:
            raise FaceApiError(exc.error, f"image {index}: {exc.detail or exc.error.message}") from exc

    probes = await asyncio.gather(*(svc.pools.inference.run(probe, i) for i in range(len(images))))
    recognizer = svc.analyzer.embedder.name
    result = [
        {
            "index_i": i,
            "index_j": j,
            "score": similarity_score(float(probes[i][0] @ probes[j][0]), recognizer),
        }
        for i, j in combinations(range(len(images)), 2)
    ]
    body: dict[str, Any] = {"result_num": len(result), "result": result}
    ext_info: dict[str, str] = {}
    if checked:
        # One entry per image, "0" where the image was not checked: "0,0.9999" in Baidu's example.
        ext_info[LIVENESS] = ",".join("0" if live is None else format_liveness(live) for _, live, _ in probes)
    if with_qualities:
        # The spec types this a string: a JSON array with each image's qualities, in image order.
        ext_info[QUALITIES] = json.dumps([qualities for _, _, qualities in probes], separators=(",", ":"))
    if ext_info:
        body["ext_info"] = [ext_info]
    return ok(log_id(request), body)


def liveness_positions(value: str | None, image_count: int) -> set[int]:
    """image_liveness names, per image position, whether to check it: "faceliveness" or nothing."""
    if not value:
        return set()
    entries = [entry.strip() for entry in value.split(",")]
    if len(entries) > image_count or any(entry not in ("", LIVENESS) for entry in entries):
        raise FaceApiError(
            ErrorCode.INVALID_PARAM,
            'image_liveness must be like "faceliveness,faceliveness" or ",faceliveness"',
        )
    return {i for i, entry in enumerate(entries) if entry == LIVENESS}
