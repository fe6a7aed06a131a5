"""The face library's management endpoints: /rest/2.0/face/v2/faceset/user/* and group/*.

The SDK posts every one of them as a form, though the document says GET for the read endpoints;
both methods are served. The SDK sends the photo as `image`, the document says `images`: both work.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api import operation as op
from renlian.api.deps import FacesetCall
from renlian.api.envelope import ok
from renlian.api.operation import INT, STR, Operation, arr, obj
from renlian.api.params import DEFAULT_IMAGE_LIMIT
from renlian.api.services import Services, ServicesDep, log_id
from renlian.api.v2 import params as v2
from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import NewFace
from renlian.vision.image import split_images

PREFIX = "/rest/2.0/face/v2/faceset"
# user/update takes several photos in one field; each costs a decode and an embedding.
MAX_ENROL_IMAGES = 10

PHOTO = v2.images(DEFAULT_IMAGE_LIMIT, "one base64 image (`image` works too)")
PHOTOS = v2.images(DEFAULT_IMAGE_LIMIT, f"up to {MAX_ENROL_IMAGES} base64 images, comma-joined")
START, END = v2.PAGE
ONE_GROUP = v2.group("group_id")
SOURCE = v2.group("src_group_id")
NONE = obj()

USER_ADD = Operation(
    f"{PREFIX}/user/add",
    "Enrol one photo for a user in one or several groups",
    (v2.UID, v2.USER_INFO, v2.GROUPS, v2.ACTION_TYPE, PHOTO),
    NONE,
    (
        *op.PARAMS,
        *op.IMAGE,
        ErrorCode.INVALID_USERID,
        ErrorCode.IMAGE_EXISTED,
        ErrorCode.FAIL_TO_ADD_USER,
        ErrorCode.DB_ERROR,
    ),
)
USER_UPDATE = Operation(
    f"{PREFIX}/user/update",
    f"Replace a user's faces with up to {MAX_ENROL_IMAGES} photos",
    (v2.UID, v2.OPTIONAL_USER_INFO, v2.OPTIONAL_GROUPS, v2.ACTION_TYPE, PHOTOS),
    NONE,
    (*op.PARAMS, *op.IMAGE, ErrorCode.USER_NOT_EXIST, ErrorCode.PARAM_TOO_LONG, ErrorCode.DB_ERROR),
)
USER_DELETE = Operation(
    f"{PREFIX}/user/delete",
    "Delete a user from every group, or from the named ones",
    (v2.UID, v2.OPTIONAL_GROUPS),
    NONE,
    (*op.PARAMS, ErrorCode.USER_NOT_EXIST, ErrorCode.DB_ERROR),
)
USER_GET = Operation(
    f"{PREFIX}/user/get",
    "A user's records, one per group",
    (v2.UID, v2.OPTIONAL_GROUPS),
    obj(result_num=INT, result=arr(obj(uid=STR, user_info=STR, group_id=STR))),
    (*op.PARAMS, ErrorCode.USER_NOT_EXIST),
    methods=("get", "post"),
)
GROUP_GETLIST = Operation(
    f"{PREFIX}/group/getlist",
    "The app's groups that hold users",
    v2.PAGE,
    obj(result_num=INT, result=arr(STR)),
    op.PARAMS,
    methods=("get", "post"),
)
GROUP_GETUSERS = Operation(
    f"{PREFIX}/group/getusers",
    "A group's users",
    (ONE_GROUP, *v2.PAGE),
    obj(result_num=INT, result=arr(obj(uid=STR, user_info=STR))),
    (*op.PARAMS, ErrorCode.GROUP_NOT_EXIST),
    methods=("get", "post"),
)
GROUP_ADDUSER = Operation(
    f"{PREFIX}/group/adduser",
    "Copy a user's record into other groups",
    (v2.UID, v2.GROUPS, SOURCE),
    NONE,
    (*op.PARAMS, ErrorCode.USER_NOT_EXIST, ErrorCode.USER_EXISTS, ErrorCode.FAIL_TO_ADD_USER),
)
GROUP_DELETEUSER = Operation(
    f"{PREFIX}/group/deleteuser",
    "Remove a user from groups (not its last)",
    (v2.UID, v2.GROUPS),
    NONE,
    (*op.PARAMS, ErrorCode.USER_NOT_EXIST, ErrorCode.USER_MUST_BE_IN_ONE_GROUP),
)
OPERATIONS = (
    USER_ADD,
    USER_UPDATE,
    USER_DELETE,
    USER_GET,
    GROUP_GETLIST,
    GROUP_GETUSERS,
    GROUP_ADDUSER,
    GROUP_DELETEUSER,
)

router = APIRouter()


async def enrolment_faces(svc: Services, app_id: str, field: str, *, single: bool) -> list[NewFace]:
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


@USER_ADD.route(router)
async def user_add(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_ADD.read(call.params)
    faces = await enrolment_faces(svc, call.app_id, values[PHOTO], single=True)
    await svc.pools.library.run(
        svc.library.add,
        call.app_id,
        values[v2.UID],
        values[v2.USER_INFO],
        values[v2.GROUPS],
        faces,
        replace=values[v2.ACTION_TYPE] == "replace",
        require_existing=False,
    )
    return ok(log_id(request), {})


@USER_UPDATE.route(router)
async def user_update(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_UPDATE.read(call.params)
    groups = values[v2.OPTIONAL_GROUPS]
    create = values[v2.ACTION_TYPE] == "replace"
    if create and groups is None:
        raise FaceApiError(ErrorCode.NOT_ENOUGH_PARAM, "action_type=replace needs group_id to enrol into")
    faces = await enrolment_faces(svc, call.app_id, values[PHOTOS], single=False)
    await svc.pools.library.run(
        svc.library.update,
        call.app_id,
        values[v2.UID],
        values[v2.OPTIONAL_USER_INFO],
        groups,
        faces,
        create=create,
    )
    return ok(log_id(request), {})


@USER_DELETE.route(router)
async def user_delete(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_DELETE.read(call.params)
    await svc.pools.library.run(svc.library.delete, call.app_id, values[v2.UID], values[v2.OPTIONAL_GROUPS])
    return ok(log_id(request), {})


@USER_GET.route(router)
async def user_get(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_GET.read(call.params)
    uid, groups = values[v2.UID], values[v2.OPTIONAL_GROUPS]
    records = [
        r
        for r in await svc.pools.library.run(svc.library.user, call.app_id, uid)
        if groups is None or r.group_id in groups
    ]
    if not records:
        raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in those groups")
    result = [{"uid": r.uid, "user_info": r.user_info, "group_id": r.group_id} for r in records]
    return ok(log_id(request), {"result_num": len(result), "result": result})


@GROUP_GETLIST.route(router)
async def group_getlist(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = GROUP_GETLIST.read(call.params)
    groups = await svc.pools.library.run(
        svc.library.groups, call.app_id, values[START], values[END], registered=False
    )
    return ok(log_id(request), {"result_num": len(groups), "result": groups})


@GROUP_GETUSERS.route(router)
async def group_getusers(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = GROUP_GETUSERS.read(call.params)
    users = await svc.pools.library.run(
        svc.library.group_users, call.app_id, values[ONE_GROUP], values[START], values[END], registered=False
    )
    result = [{"uid": u.uid, "user_info": u.user_info} for u in users]
    return ok(log_id(request), {"result_num": len(result), "result": result})


@GROUP_ADDUSER.route(router)
async def group_adduser(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = GROUP_ADDUSER.read(call.params)
    await svc.pools.library.run(
        svc.library.copy, call.app_id, values[v2.UID], values[SOURCE], values[v2.GROUPS]
    )
    return ok(log_id(request), {})


@GROUP_DELETEUSER.route(router)
async def group_deleteuser(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = GROUP_DELETEUSER.read(call.params)
    await svc.pools.library.run(
        svc.library.remove_from_groups, call.app_id, values[v2.UID], values[v2.GROUPS]
    )
    return ok(log_id(request), {})
