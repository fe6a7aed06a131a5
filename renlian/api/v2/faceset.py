"""The face library's management endpoints: /rest/2.0/face/v2/faceset/user/* and group/*.

The SDK posts every one of them as a form, though the document says GET for the read endpoints;
both methods are served. The SDK sends the photo as `image`, the document says `images`: both work.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api.deps import FacesetCall
from renlian.api.envelope import ok
from renlian.api.params import DEFAULT_IMAGE_LIMIT, Params, check_encoded_size
from renlian.api.services import Services, ServicesDep, log_id
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import parse_groups, parse_uid, parse_user_info
from renlian.store.base import NewFace
from renlian.vision.image import split_images

PREFIX = "/rest/2.0/face/v2/faceset"
MAX_PAGE = 1000
ACTION_TYPES = ("append", "replace")
# user/update takes several photos in one field; each costs a decode and an embedding.
MAX_ENROL_IMAGES = 10

router = APIRouter()


async def enrolment_faces(svc: Services, app_id: str, p: Params, *, single: bool) -> list[NewFace]:
    field = p.first_of("images", "image")
    check_encoded_size(field, DEFAULT_IMAGE_LIMIT)
    texts = split_images(field)
    if single and len(texts) > 1:
        raise FaceApiError(ErrorCode.INVALID_PARAM, "this endpoint takes one image per request")
    if len(texts) > MAX_ENROL_IMAGES:
        raise FaceApiError(ErrorCode.PARAM_TOO_LONG, f"at most {MAX_ENROL_IMAGES} images per request")
    faces = []
    for text in texts:
        # One after another, not gathered: the request holds one decoded image at a time.
        faces.append(await svc.pools.inference.run(svc.enrolment_face, app_id, text))
    return faces


def action_type(p: Params) -> str:
    value = p.optional("action_type") or "append"
    if value not in ACTION_TYPES:
        raise FaceApiError(ErrorCode.INVALID_PARAM, "action_type must be append or replace")
    return value


def page(p: Params) -> tuple[int, int]:
    """Baidu's paging: `start` is the first position, `end` the number of items to return."""
    return p.uint("start", 0, minimum=0, maximum=2**31), p.uint("end", 100, minimum=0, maximum=MAX_PAGE)


def optional_groups(p: Params) -> list[str] | None:
    value = p.optional("group_id")
    return parse_groups(value) if value else None


@router.api_route(PREFIX + "/user/add", methods=["POST"])
async def user_add(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid = parse_uid(p.required("uid"))
    user_info = parse_user_info(p.required("user_info"))
    groups = parse_groups(p.required("group_id"))
    replace = action_type(p) == "replace"
    faces = await enrolment_faces(svc, call.app_id, p, single=True)
    await svc.pools.store.run(
        svc.library.add,
        call.app_id,
        uid,
        user_info,
        groups,
        faces,
        replace=replace,
        require_existing=False,
    )
    return ok(log_id(request), {})


@router.api_route(PREFIX + "/user/update", methods=["POST"])
async def user_update(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid = parse_uid(p.required("uid"))
    user_info = p.optional("user_info")
    groups = optional_groups(p)
    create = action_type(p) == "replace"
    if create and groups is None:
        raise FaceApiError(ErrorCode.NOT_ENOUGH_PARAM, "action_type=replace needs group_id to enrol into")
    faces = await enrolment_faces(svc, call.app_id, p, single=False)
    await svc.pools.store.run(
        svc.library.update,
        call.app_id,
        uid,
        parse_user_info(user_info) if user_info is not None else None,
        groups,
        faces,
        create=create,
    )
    return ok(log_id(request), {})


@router.api_route(PREFIX + "/user/delete", methods=["POST"])
async def user_delete(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid = parse_uid(p.required("uid"))
    await svc.pools.store.run(svc.library.delete, call.app_id, uid, optional_groups(p))
    return ok(log_id(request), {})


@router.api_route(PREFIX + "/user/get", methods=["GET", "POST"])
async def user_get(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid = parse_uid(p.required("uid"))
    groups = optional_groups(p)
    records = [
        r
        for r in await svc.pools.store.run(svc.library.user, call.app_id, uid)
        if groups is None or r.group_id in groups
    ]
    if not records:
        raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in those groups")
    result = [{"uid": r.uid, "user_info": r.user_info, "group_id": r.group_id} for r in records]
    return ok(log_id(request), {"result_num": len(result), "result": result})


@router.api_route(PREFIX + "/group/getlist", methods=["GET", "POST"])
async def group_getlist(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    start, count = page(p)
    groups = await svc.pools.store.run(svc.library.store.groups, call.app_id, start, count)
    return ok(log_id(request), {"result_num": len(groups), "result": groups})


@router.api_route(PREFIX + "/group/getusers", methods=["GET", "POST"])
async def group_getusers(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    group = single_group(p, "group_id")
    start, count = page(p)
    if not await svc.pools.store.run(svc.library.store.group_exists, call.app_id, group):
        raise FaceApiError(ErrorCode.NO_USER_IN_GROUP, f"group {group} has no users")
    users = await svc.pools.store.run(svc.library.store.group_users, call.app_id, group, start, count)
    result = [{"uid": u.uid, "user_info": u.user_info} for u in users]
    return ok(log_id(request), {"result_num": len(result), "result": result})


def single_group(p: Params, name: str) -> str:
    groups = parse_groups(p.required(name))
    if len(groups) != 1:
        raise FaceApiError(ErrorCode.INVALID_PARAM, f"{name} must name one group here")
    return groups[0]


@router.api_route(PREFIX + "/group/adduser", methods=["POST"])
async def group_adduser(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid = parse_uid(p.required("uid"))
    targets = parse_groups(p.required("group_id"))
    source = single_group(p, "src_group_id")
    await svc.pools.store.run(svc.library.copy, call.app_id, uid, source, targets)
    return ok(log_id(request), {})


@router.api_route(PREFIX + "/group/deleteuser", methods=["POST"])
async def group_deleteuser(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid = parse_uid(p.required("uid"))
    groups = parse_groups(p.required("group_id"))
    await svc.pools.store.run(svc.library.remove_from_groups, call.app_id, uid, groups)
    return ok(log_id(request), {})
