"""1:N identification and 1:1 verification against the face library: /face/v2/identify and /verify."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api.deps import IdentifyCall, VerifyCall
from renlian.api.envelope import LIVENESS, format_liveness, ok
from renlian.api.params import DEFAULT_IMAGE_LIMIT, Params, check_encoded_size
from renlian.api.services import Services, ServicesDep, log_id
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import parse_groups, parse_uid
from renlian.vision.image import BGRImage, split_images
from renlian.vision.score import similarity_score

EXT_FIELDS = frozenset({LIVENESS})
MAX_USER_TOP = 5
MAX_TOP = 100

router = APIRouter()


async def probe(svc: Services, p: Params) -> tuple[BGRImage, bool]:
    """The probe photo's pixels, and whether ext_fields asks for its liveness."""
    field = p.first_of("images", "image")
    check_encoded_size(field, DEFAULT_IMAGE_LIMIT)
    if len(split_images(field)) > 1:
        raise FaceApiError(ErrorCode.INVALID_PARAM, "identify and verify take one image per request")
    liveness = LIVENESS in p.choices("ext_fields", EXT_FIELDS)
    return await svc.pools.inference.run(svc.decode, field), liveness


def with_liveness(body: dict[str, Any], live: float | None) -> dict[str, Any]:
    return body if live is None else {**body, "ext_info": [{LIVENESS: format_liveness(live)}]}


@router.api_route("/rest/2.0/face/v2/identify", methods=["POST"])
async def identify(request: Request, call: IdentifyCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    groups = parse_groups(p.required("group_id"))
    top = p.uint("user_top_num", 1, minimum=1, maximum=MAX_USER_TOP)
    pixels, liveness = await probe(svc, p)
    hits, live = await svc.pools.inference.run(
        svc.library.identify, call.app_id, groups, pixels, top, liveness=liveness
    )
    model = svc.library.index.model
    result = [
        {
            "group_id": hit.group_id,
            "uid": hit.uid,
            "user_info": hit.user_info,
            "scores": [similarity_score(cosine, model) for cosine in hit.scores],
        }
        for hit in hits
    ]
    return ok(log_id(request), with_liveness({"result_num": len(result), "result": result}, live))


@router.api_route("/rest/2.0/face/v2/verify", methods=["POST"])
async def verify(request: Request, call: VerifyCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid = parse_uid(p.required("uid"))
    groups = parse_groups(p.required("group_id"))
    top = p.uint("top_num", 1, minimum=1, maximum=MAX_TOP)
    pixels, liveness = await probe(svc, p)
    cosines, live = await svc.pools.inference.run(
        svc.library.verify, call.app_id, uid, groups, pixels, liveness=liveness
    )
    model = svc.library.index.model
    result = [similarity_score(cosine, model) for cosine in cosines[:top]]
    return ok(log_id(request), with_liveness({"result_num": len(result), "result": result}, live))
