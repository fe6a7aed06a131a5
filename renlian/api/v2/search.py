"""1:N identification and 1:1 verification against the face library: /face/v2/identify and /verify."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api import operation as op
from renlian.api.deps import IdentifyCall, VerifyCall
from renlian.api.envelope import LIVENESS, format_liveness, ok
from renlian.api.operation import INT, NUM, STR, Operation, Values, arr, obj
from renlian.api.params import DEFAULT_IMAGE_LIMIT
from renlian.api.services import Services, ServicesDep, log_id
from renlian.api.v2 import params as v2
from renlian.core.faces import Photo, Probe
from renlian.core.search import Match
from renlian.errors import ErrorCode, FaceApiError
from renlian.vision.image import split_images

MAX_USER_TOP = 5
MAX_TOP = 100

IMAGES = v2.images(DEFAULT_IMAGE_LIMIT, "one base64 image (`image` works too)")
USER_TOP = op.integer("user_top_num", 1, 1, MAX_USER_TOP)
TOP = op.integer("top_num", 1, 1, MAX_TOP)
IDENTIFY = Operation(
    "/rest/2.0/face/v2/identify",
    "1:N search of one or several groups",
    (v2.GROUPS, USER_TOP, IMAGES, v2.EXT_LIVENESS),
    obj(result_num=INT, result=arr(obj(group_id=STR, uid=STR, user_info=STR, scores=arr(NUM)))),
    (
        *op.PARAMS,
        *op.IMAGE,
        ErrorCode.GROUP_NOT_EXIST,
        ErrorCode.INVALID_GROUP_ID,
        ErrorCode.INDEX_NOT_CURRENT,
    ),
)
VERIFY = Operation(
    "/rest/2.0/face/v2/verify",
    "1:1 against a user's faces",
    (v2.UID, v2.GROUPS, TOP, IMAGES, v2.EXT_LIVENESS),
    obj(result_num=INT, result=arr(NUM)),
    (*op.PARAMS, *op.IMAGE, ErrorCode.USER_NOT_EXIST, ErrorCode.INVALID_USERID, ErrorCode.INDEX_NOT_CURRENT),
)
OPERATIONS = (IDENTIFY, VERIFY)

router = APIRouter()


def photo(svc: Services, values: Values) -> tuple[Photo, bool]:
    """The probe photo, and whether ext_fields asks for its liveness."""
    field = values[IMAGES]
    if len(split_images(field)) > 1:
        raise FaceApiError(ErrorCode.INVALID_PARAM, "identify and verify take one image per request")
    return svc.ops.base64_photo(field), LIVENESS in values[v2.EXT_LIVENESS]


def with_liveness(body: dict[str, Any], probe: Probe) -> dict[str, Any]:
    live = probe.examined.liveness
    return body if live is None else {**body, "ext_info": [{LIVENESS: format_liveness(live)}]}


@IDENTIFY.route(router)
async def identify(request: Request, call: IdentifyCall, svc: ServicesDep) -> JSONResponse:
    values = IDENTIFY.read(call.params)
    groups, top = values[v2.GROUPS], values[USER_TOP]

    def run() -> tuple[Probe, list[Match]]:
        picture, liveness = photo(svc, values)
        return svc.recognition.search(
            call.app_id, groups, picture, top, liveness=liveness, require_faces=True
        )

    probe, matches = await svc.pools.inference.run(run)
    result = [
        {"group_id": match.group_id, "uid": match.uid, "user_info": match.user_info, "scores": match.scores}
        for match in matches
    ]
    return ok(log_id(request), with_liveness({"result_num": len(result), "result": result}, probe))


@VERIFY.route(router)
async def verify(request: Request, call: VerifyCall, svc: ServicesDep) -> JSONResponse:
    values = VERIFY.read(call.params)
    uid, groups, top = values[v2.UID], values[v2.GROUPS], values[TOP]

    def run() -> tuple[Probe, list[float]]:
        picture, liveness = photo(svc, values)
        return svc.recognition.verify(call.app_id, uid, groups, picture, top, liveness=liveness)

    probe, scores = await svc.pools.inference.run(run)
    return ok(log_id(request), with_liveness({"result_num": len(scores), "result": scores}, probe))
