"""v3's face library management: /rest/2.0/face/v3/faceset/..., on the same store as v2.

user_id is v2's uid and groups are shared, so a user enrolled through either protocol is found
through the other. v3 groups also exist empty (group/add); v2 sees a group while it holds users.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from renlian.api.deps import FacesetCall
from renlian.api.envelope import v3_ok
from renlian.api.params import Params
from renlian.api.services import Services, ServicesDep, log_id
from renlian.api.v3 import params as v3
from renlian.api.v3.shape import location
from renlian.core.facetokens import TOKEN, face_token
from renlian.errors import ErrorCode, FaceApiError

ADD_ACTIONS = ("APPEND", "REPLACE")
UPDATE_ACTIONS = ("UPDATE", "REPLACE")

router = APIRouter(prefix=v3.PREFIX + "/faceset")


async def _enrol(svc: Services, app_id: str, p: Params, *, action: str) -> dict[str, Any]:
    """user/add and user/update: one photo's largest face into one group, with its controls."""
    ref, controls = v3.image(p), v3.controls(p)
    group, uid, info = v3.group(p), v3.user_id(p), v3.user_info(p)
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
            replace=action in ("REPLACE", "UPDATE"),
            require_existing=action == "UPDATE",
            unique_in_group=True,
        )
        return {"face_token": probe.token, "location": location(probe.location)}

    return await svc.pools.inference.run(run)


async def _registered(svc: Services, app_id: str, group: str) -> None:
    if not await svc.pools.store.run(svc.library.store.group_registered, app_id, group):
        raise FaceApiError(ErrorCode.NO_USER_IN_GROUP, f"group {group} does not exist")


@router.post("/user/add")
async def user_add(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    action = call.params.choice("action_type", ADD_ACTIONS, "APPEND")
    return v3_ok(log_id(request), await _enrol(svc, call.app_id, call.params, action=action))


@router.post("/user/update")
async def user_update(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    action = call.params.choice("action_type", UPDATE_ACTIONS, "UPDATE")
    return v3_ok(log_id(request), await _enrol(svc, call.app_id, call.params, action=action))


@router.post("/user/get")
async def user_get(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    uid, group = v3.user_id(call.params), v3.group_or_all(call.params)
    if group is not None:
        await _registered(svc, call.app_id, group)
    records = [
        record
        for record in await svc.pools.store.run(svc.library.store.user, call.app_id, uid)
        if group is None or record.group_id == group
    ]
    if not records:
        raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in that group")
    users = [{"user_info": record.user_info, "group_id": record.group_id} for record in records]
    return v3_ok(log_id(request), {"user_list": users})


@router.post("/user/delete")
async def user_delete(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    uid, group = v3.user_id(call.params), v3.group_or_all(call.params)
    if group is not None:
        await _registered(svc, call.app_id, group)
    await svc.pools.store.run(svc.library.delete, call.app_id, uid, None if group is None else [group])
    return v3_ok(log_id(request), None)


@router.post("/user/copy")
async def user_copy(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid = v3.user_id(p)
    source, target = v3.group(p, "src_group_id"), v3.group(p, "dst_group_id")
    await _registered(svc, call.app_id, source)
    await svc.pools.store.run(svc.library.copy_into_existing, call.app_id, uid, source, target)
    return v3_ok(log_id(request), None)


@router.post("/face/getlist")
async def face_getlist(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    uid, group = v3.user_id(call.params), v3.group(call.params)
    await _registered(svc, call.app_id, group)
    faces = await svc.pools.store.run(svc.library.store.user_faces, call.app_id, group, uid)
    if not faces:
        raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {group}")
    listed = []
    for sha256, created in faces:
        entry: dict[str, Any] = {"face_token": face_token(sha256, 0)}
        if created is not None:
            entry["ctime"] = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        listed.append(entry)
    return v3_ok(log_id(request), {"face_list": listed})


@router.post("/face/delete")
async def face_delete(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    p = call.params
    uid, group, token = v3.user_id(p), v3.group(p), p.required("face_token")
    if not TOKEN.fullmatch(token):
        raise FaceApiError(ErrorCode.INVALID_PARAM, "a face_token is 32 hex digits", field="face_token")
    await svc.pools.store.run(svc.library.delete_face, call.app_id, group, uid, token)
    return v3_ok(log_id(request), None)


@router.post("/group/add")
async def group_add(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    await svc.pools.store.run(svc.library.add_group, call.app_id, v3.group(call.params))
    return v3_ok(log_id(request), None)


@router.post("/group/delete")
async def group_delete(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    await svc.pools.store.run(svc.library.delete_group, call.app_id, v3.group(call.params))
    return v3_ok(log_id(request), None)


@router.post("/group/getlist")
async def group_getlist(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    start, length = v3.page(call.params)
    groups = await svc.pools.store.run(svc.library.store.registered_groups, call.app_id, start, length)
    return v3_ok(log_id(request), {"group_id_list": groups})


@router.post("/group/getusers")
async def group_getusers(request: Request, call: FacesetCall, svc: ServicesDep) -> JSONResponse:
    group = v3.group(call.params)
    start, length = v3.page(call.params)
    await _registered(svc, call.app_id, group)
    users = await svc.pools.store.run(svc.library.store.group_users, call.app_id, group, start, length)
    return v3_ok(log_id(request), {"user_id_list": [user.uid for user in users]})
