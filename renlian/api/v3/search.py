"""v3 1:N and M:N search: /rest/2.0/face/v3/search and /multi-search, over the shared face library."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api import operation as op
from renlian.api.deps import IdentifyCall
from renlian.api.envelope import v3_ok
from renlian.api.operation import STR, Operation, arr, obj
from renlian.api.services import ServicesDep, log_id
from renlian.api.v3 import params as v3
from renlian.api.v3.shape import location
from renlian.core.faces import Probe
from renlian.core.search import Match
from renlian.errors import ErrorCode, FaceApiError

MAX_USERS = 50
MAX_MULTI_USERS = 20
MAX_MULTI_FACES = 10
# Baidu's sources disagree on search's default threshold (0 in the newest, 80 in the SDKs'
# docblocks); the newest wins (docs/compat.md). multi-search's is 80 in every source.
SEARCH_THRESHOLD = 0
MULTI_SEARCH_THRESHOLD = 80

MAX_USER_NUM = op.integer("max_user_num", 1, 1, MAX_USERS)
THRESHOLD = v3.threshold(SEARCH_THRESHOLD)
MULTI_FACE_NUM = op.integer("max_face_num", 1, 1, MAX_MULTI_FACES)
MULTI_USER_NUM = op.integer("max_user_num", 1, 1, MAX_MULTI_USERS)
MULTI_THRESHOLD = v3.threshold(MULTI_SEARCH_THRESHOLD)
SEARCH = Operation(
    f"{v3.PREFIX}/search",
    "1:N search of up to 10 groups, or 1:1 against one user with user_id",
    (
        v3.IMAGE,
        v3.IMAGE_TYPE,
        *v3.CONTROLS,
        v3.GROUP_LIST,
        v3.OPTIONAL_USER_ID,
        MAX_USER_NUM,
        THRESHOLD,
    ),
    obj(face_token=STR, user_list=arr(v3.USER)),
    (
        *op.PARAMS,
        *v3.IMAGE_ERRORS,
        *v3.CONTROL_ERRORS,
        ErrorCode.MATCH_USER_NOT_FOUND,
        ErrorCode.GROUP_LIST_TOO_LARGE,
        ErrorCode.GROUP_NOT_EXIST,
        ErrorCode.INDEX_NOT_CURRENT,
    ),
    body="json",
)
MULTI_SEARCH = Operation(
    f"{v3.PREFIX}/multi-search",
    "M:N search: every face of a photo, in one pass over each gallery",
    (
        v3.IMAGE,
        v3.IMAGE_TYPE,
        *v3.CONTROLS,
        v3.GROUP_LIST,
        MULTI_FACE_NUM,
        MULTI_USER_NUM,
        MULTI_THRESHOLD,
    ),
    obj(face_num=op.INT, face_list=arr(obj(face_token=STR, location=v3.LOCATION, user_list=arr(v3.USER)))),
    (
        *op.PARAMS,
        *v3.IMAGE_ERRORS,
        ErrorCode.GROUP_LIST_TOO_LARGE,
        ErrorCode.GROUP_NOT_EXIST,
        ErrorCode.INDEX_NOT_CURRENT,
    ),
    body="json",
)
OPERATIONS = (SEARCH, MULTI_SEARCH)

router = APIRouter()


def _users(matches: list[Match], threshold: int) -> list[dict[str, Any]]:
    return [
        {
            "group_id": match.group_id,
            "user_id": match.uid,
            "user_info": match.user_info,
            "score": match.scores[0],
        }
        for match in matches
        if match.scores[0] >= threshold
    ]


@SEARCH.route(router)
async def search(request: Request, call: IdentifyCall, svc: ServicesDep) -> JSONResponse:
    values = SEARCH.read(call.params)
    ref, controls = v3.image(values), v3.controls(values)
    groups, only = values[v3.GROUP_LIST], values[v3.OPTIONAL_USER_ID]
    users, threshold = values[MAX_USER_NUM], values[THRESHOLD]
    number = await svc.pools.library.run(svc.library.require_groups, call.app_id, groups)
    ref = await v3.fetched(svc, ref)

    def run() -> tuple[Probe, list[Match]]:
        photo = svc.ops.photo(call.app_id, ref)
        return svc.recognition.search(
            call.app_id, groups, photo, users, controls=controls, only_uid=only, at_least=number
        )

    probe, matches = await svc.pools.inference.run(run)
    found = _users(matches, threshold)
    if not found:
        raise FaceApiError(ErrorCode.MATCH_USER_NOT_FOUND, f"no user scores {threshold} or more")
    return v3_ok(log_id(request), {"face_token": probe.token, "user_list": found})


@MULTI_SEARCH.route(router)
async def multi_search(request: Request, call: IdentifyCall, svc: ServicesDep) -> JSONResponse:
    values = MULTI_SEARCH.read(call.params)
    ref, controls = v3.image(values), v3.controls(values)
    groups = values[v3.GROUP_LIST]
    faces, users = values[MULTI_FACE_NUM], values[MULTI_USER_NUM]
    threshold = values[MULTI_THRESHOLD]
    number = await svc.pools.library.run(svc.library.require_groups, call.app_id, groups)
    ref = await v3.fetched(svc, ref)

    def run() -> list[tuple[Probe, list[Match]]]:
        photo = svc.ops.photo(call.app_id, ref)
        return svc.recognition.search_faces(
            call.app_id, groups, photo, faces, users, controls=controls, at_least=number
        )

    found = await svc.pools.inference.run(run)
    face_list = [
        {
            "face_token": probe.token,
            "location": location(probe.location),
            "user_list": _users(matches, threshold),
        }
        for probe, matches in found
    ]
    return v3_ok(log_id(request), {"face_num": len(face_list), "face_list": face_list})
