"""v3's face library management: /rest/2.0/face/v3/faceset/..., on the same store as v2.

user_id is v2's uid and groups are shared, so a user enrolled through either protocol is found
through the other. v3 groups also exist empty (group/add); v2 sees a group while it holds users.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api import operation as op
from renlian.api.deps import FacesetCall
from renlian.api.envelope import v3_ok
from renlian.api.operation import NULL, STR, Operation, Param, Values, arr, obj
from renlian.api.services import Services, ServicesDep, log_id
from renlian.api.v3 import params as v3
from renlian.api.v3.shape import location
from renlian.core.facetokens import TOKEN, face_token
from renlian.errors import ErrorCode, FaceApiError

ADD_ACTIONS = ("APPEND", "REPLACE")
UPDATE_ACTIONS = ("UPDATE", "REPLACE")
FACESET = f"{v3.PREFIX}/faceset"

ADD_ACTION = op.choice("action_type", ADD_ACTIONS, "APPEND")
UPDATE_ACTION = op.choice("action_type", UPDATE_ACTIONS, "UPDATE")
SOURCE, TARGET = op.group("src_group_id"), op.group("dst_group_id")
FACE_TOKEN = op.text("face_token", description="32 hex digits", pattern=TOKEN.pattern)
_ENROL: tuple[Param[Any], ...] = (v3.IMAGE, v3.IMAGE_TYPE, *v3.CONTROLS, v3.GROUP, v3.USER_ID, v3.USER_INFO)
_ENROL_ERRORS = (
    *op.PARAMS,
    *v3.IMAGE_ERRORS,
    *v3.CONTROL_ERRORS,
    ErrorCode.IMAGE_EXISTED,
    ErrorCode.USER_NOT_EXIST,
    ErrorCode.FAIL_TO_ADD_USER,
    ErrorCode.DB_ERROR,
)
_ENROLLED = obj(face_token=STR, location=v3.LOCATION)
USER_ADD = Operation(
    f"{FACESET}/user/add",
    "Register a photo's largest face for a user in a group",
    (ADD_ACTION, *_ENROL),
    _ENROLLED,
    _ENROL_ERRORS,
    body="json",
)
USER_UPDATE = Operation(
    f"{FACESET}/user/update",
    "Replace a user's faces in a group",
    (UPDATE_ACTION, *_ENROL),
    _ENROLLED,
    _ENROL_ERRORS,
    body="json",
)
USER_GET = Operation(
    f"{FACESET}/user/get",
    "A user's groups and user_info",
    (v3.USER_ID, v3.GROUP_OR_ALL),
    obj(user_list=arr(obj(user_info=STR, group_id=STR))),
    (*op.PARAMS, *v3.LIBRARY),
    body="json",
)
USER_DELETE = Operation(
    f"{FACESET}/user/delete",
    "Delete a user from a group, or from every group with @ALL",
    (v3.USER_ID, v3.GROUP_OR_ALL),
    NULL,
    (*op.PARAMS, *v3.LIBRARY),
    body="json",
)
USER_COPY = Operation(
    f"{FACESET}/user/copy",
    "Copy a user into an existing group",
    (v3.USER_ID, SOURCE, TARGET),
    NULL,
    (*op.PARAMS, *v3.LIBRARY, ErrorCode.DST_GROUP_NOT_EXIST, ErrorCode.USER_EXISTS),
    body="json",
)
FACE_GETLIST = Operation(
    f"{FACESET}/face/getlist",
    "A user's faces in a group",
    (v3.USER_ID, v3.GROUP),
    obj(face_list=arr(obj(face_token=STR, ctime=STR))),
    (*op.PARAMS, *v3.LIBRARY),
    body="json",
)
FACE_DELETE = Operation(
    f"{FACESET}/face/delete",
    "Delete one face (the user goes with its last)",
    (v3.USER_ID, v3.GROUP, FACE_TOKEN),
    NULL,
    (*op.PARAMS, *v3.LIBRARY, ErrorCode.FACE_NOT_EXIST),
    body="json",
)
GROUP_ADD = Operation(
    f"{FACESET}/group/add",
    "Create an empty group",
    (v3.GROUP,),
    NULL,
    (*op.PARAMS, ErrorCode.GROUP_EXISTS, ErrorCode.DB_ERROR),
    body="json",
)
GROUP_DELETE = Operation(
    f"{FACESET}/group/delete",
    "Delete a group with its users and faces",
    (v3.GROUP,),
    NULL,
    (*op.PARAMS, ErrorCode.GROUP_NOT_EXIST, ErrorCode.DB_ERROR),
    body="json",
)
START, LENGTH = v3.PAGE
GROUP_GETLIST = Operation(
    f"{FACESET}/group/getlist",
    "The app's groups",
    v3.PAGE,
    obj(group_id_list=arr(STR)),
    op.PARAMS,
    body="json",
)
GROUP_GETUSERS = Operation(
    f"{FACESET}/group/getusers",
    "A group's user ids",
    (v3.GROUP, *v3.PAGE),
    obj(user_id_list=arr(STR)),
    (*op.PARAMS, ErrorCode.GROUP_NOT_EXIST),
    body="json",
)
OPERATIONS = (
    USER_ADD,
    USER_UPDATE,
    USER_GET,
    USER_COPY,
    USER_DELETE,
    FACE_GETLIST,
    FACE_DELETE,
    GROUP_ADD,
    GROUP_DELETE,
    GROUP_GETLIST,
    GROUP_GETUSERS,
)

router = APIRouter()


async def _enrol(svc: Services, app_id: str, values: Values, action: Param[str]) -> dict[str, Any]:
    """user/add and user/update: one photo's largest face into one group, with its controls."""
    ref, controls = v3.image(values), v3.controls(values)
    group, uid, info = values[v3.GROUP], values[v3.USER_ID], values[v3.USER_INFO]
    replace = values[action] in ("REPLACE", "UPDATE")
    require_existing = values[action] == "UPDATE"
    ref = await v3.fetched(svc, ref)

    def run() -> dict[str, Any]:
        photo = svc.ops.photo(app_id, ref)
        face, probe = svc.ops.enrolment(app_id, photo, controls, pose=True)
        svc.library.add(
            app_id,
            uid,
            info,
            [group],
            [face],
            replace=replace,
            require_existing=require_existing,
            unique_in_group=True,
        )
        return {"face_token": probe.token, "location": location(probe.location)}

    return await svc.pools.inference.run(run)


@USER_ADD.route(router)
async def user_add(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_ADD.read(call.params)
    return v3_ok(log_id(request), await _enrol(svc, call.app_id, values, ADD_ACTION))


@USER_UPDATE.route(router)
async def user_update(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_UPDATE.read(call.params)
    return v3_ok(log_id(request), await _enrol(svc, call.app_id, values, UPDATE_ACTION))


@USER_GET.route(router)
async def user_get(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_GET.read(call.params)
    uid, group = values[v3.USER_ID], values[v3.GROUP_OR_ALL]
    if group is not None:
        await svc.pools.library.run(svc.library.require_group, call.app_id, group)
    records = [
        record
        for record in await svc.pools.library.run(svc.library.user, call.app_id, uid)
        if group is None or record.group_id == group
    ]
    if not records:
        raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in that group")
    users = [{"user_info": record.user_info, "group_id": record.group_id} for record in records]
    return v3_ok(log_id(request), {"user_list": users})


@USER_DELETE.route(router)
async def user_delete(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_DELETE.read(call.params)
    uid, group = values[v3.USER_ID], values[v3.GROUP_OR_ALL]
    if group is not None:
        await svc.pools.library.run(svc.library.require_group, call.app_id, group)
    await svc.pools.library.run(svc.library.delete, call.app_id, uid, None if group is None else [group])
    return v3_ok(log_id(request), None)


@USER_COPY.route(router)
async def user_copy(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = USER_COPY.read(call.params)
    uid, source, target = values[v3.USER_ID], values[SOURCE], values[TARGET]
    await svc.pools.library.run(svc.library.require_group, call.app_id, source)
    await svc.pools.library.run(svc.library.copy_into_existing, call.app_id, uid, source, target)
    return v3_ok(log_id(request), None)


@FACE_GETLIST.route(router)
async def face_getlist(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = FACE_GETLIST.read(call.params)
    uid, group = values[v3.USER_ID], values[v3.GROUP]
    faces = await svc.pools.library.run(svc.library.user_faces, call.app_id, group, uid)
    listed = []
    for sha256, created in faces:
        entry: dict[str, Any] = {"face_token": face_token(sha256, 0)}
        if created is not None:
            entry["ctime"] = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        listed.append(entry)
    return v3_ok(log_id(request), {"face_list": listed})


@FACE_DELETE.route(router)
async def face_delete(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = FACE_DELETE.read(call.params)
    uid, group, token = values[v3.USER_ID], values[v3.GROUP], values[FACE_TOKEN]
    await svc.pools.library.run(svc.library.delete_face, call.app_id, group, uid, token)
    return v3_ok(log_id(request), None)


@GROUP_ADD.route(router)
async def group_add(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    group = GROUP_ADD.read(call.params)[v3.GROUP]
    await svc.pools.library.run(svc.library.add_group, call.app_id, group)
    return v3_ok(log_id(request), None)


@GROUP_DELETE.route(router)
async def group_delete(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    group = GROUP_DELETE.read(call.params)[v3.GROUP]
    await svc.pools.library.run(svc.library.delete_group, call.app_id, group)
    return v3_ok(log_id(request), None)


@GROUP_GETLIST.route(router)
async def group_getlist(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = GROUP_GETLIST.read(call.params)
    groups = await svc.pools.library.run(svc.library.groups, call.app_id, values[START], values[LENGTH])
    return v3_ok(log_id(request), {"group_id_list": groups})


@GROUP_GETUSERS.route(router)
async def group_getusers(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    values = GROUP_GETUSERS.read(call.params)
    group = values[v3.GROUP]
    users = await svc.pools.library.run(
        svc.library.group_users, call.app_id, group, values[START], values[LENGTH]
    )
    return v3_ok(log_id(request), {"user_id_list": [user.uid for user in users]})
