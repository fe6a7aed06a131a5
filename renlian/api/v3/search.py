"""v3 1:N and M:N search: /rest/2.0/face/v3/search and /multi-search, over the shared face library."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api import operation as op
from renlian.api.deps import IdentifyCall
from renlian.api.envelope import v3_ok
from renlian.api.operation import STR, Operation, arr, obj
from renlian.api.services import Services, ServicesDep, log_id
from renlian.api.v3 import params as v3
from renlian.api.v3.shape import location
from renlian.core.faces import Probe
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import GroupHit
from renlian.vision.score import similarity_score

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


def _users(svc: Services, hits: list[GroupHit], threshold: int) -> list[dict[str, Any]]:
    model = svc.analyzer.embedder.name
    found = []
    for hit in hits:
        score = similarity_score(hit.scores[0], model)
        if score >= threshold:
            found.append(
                {"group_id": hit.group_id, "user_id": hit.uid, "user_info": hit.user_info, "score": score}
            )
    return found


@SEARCH.route(router)
async def search(request: Request, call: IdentifyCall, svc: ServicesDep) -> JSONResponse:
    values = SEARCH.read(call.params)
    ref, controls = v3.image(values), v3.controls(values)
    groups, only = values[v3.GROUP_LIST], values[v3.OPTIONAL_USER_ID]
    users, threshold = values[MAX_USER_NUM], values[THRESHOLD]
    number = await svc.pools.library.run(svc.library.existing_groups, call.app_id, groups)
    ref = await v3.fetched(svc, ref)

    def run() -> tuple[Probe, list[GroupHit]]:
        probe = svc.ops.probe(call.app_id, svc.ops.photo(call.app_id, ref), controls)
        queries = probe.examined.embedding[np.newaxis, :]
        found = svc.library.search_embeddings(
            call.app_id, groups, queries, users, only_uid=only, at_least=number
        )
        return probe, found[0]

    probe, hits = await svc.pools.inference.run(run)
    found = _users(svc, hits, threshold)
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
    number = await svc.pools.library.run(svc.library.existing_groups, call.app_id, groups)
    ref = await v3.fetched(svc, ref)

    def run() -> list[dict[str, Any]]:
        photo = svc.ops.photo(call.app_id, ref)
        probes = svc.ops.probes(call.app_id, photo, faces, controls)
        if not probes:
            return []
        # Every face in one pass over each gallery.
        queries = np.stack([probe.examined.embedding for probe in probes])
        hits = svc.library.search_embeddings(call.app_id, groups, queries, users, at_least=number)
        return [
            {
                "face_token": probe.token,
                "location": location(probe.location),
                "user_list": _users(svc, found, threshold),
            }
            for probe, found in zip(probes, hits, strict=True)
        ]

    face_list = await svc.pools.inference.run(run)
    return v3_ok(log_id(request), {"face_num": len(face_list), "face_list": face_list})
