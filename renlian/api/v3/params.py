"""Reading v3's parameters: every malformed one answers its own v3 code (errors.V3_FIELD_ERRORS)."""

from __future__ import annotations

from renlian.api.params import Params
from renlian.api.services import Services
from renlian.core.controls import Controls, parse_controls
from renlian.core.faces import IMAGE_TYPES, ImageRef
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import parse_groups, parse_uid, parse_user_info

PREFIX = "/rest/2.0/face/v3"
ALL_GROUPS = "@ALL"
MAX_GROUP_LIST = 10
MAX_PAGE = 1000
FACE_TYPES = ("LIVE", "IDCARD", "WATERMARK", "CERT", "INFRARED", "HYBRID")


async def fetched(svc: Services, ref: ImageRef) -> ImageRef:
    """Download a URL image before the inference pool sees it (core/faces.py, download), in the
    fetch pool: a slow image server holds a thread that neither models nor logins need."""
    return await svc.pools.fetch.run(svc.ops.download, ref) if ref.kind == "URL" else ref


def image(p: Params) -> ImageRef:
    value = p.required("image")
    kind = p.required("image_type")
    if kind not in IMAGE_TYPES:
        raise FaceApiError(
            ErrorCode.INVALID_PARAM, f"image_type must be one of {', '.join(IMAGE_TYPES)}", field="image_type"
        )
    return ImageRef(kind, value)


def controls(p: Params) -> Controls:
    # face_type names the kind of photo; one model serves them all, so it is checked and not used.
    p.choice("face_type", FACE_TYPES, "LIVE")
    return parse_controls(
        p.optional("quality_control"), p.optional("liveness_control"), p.optional("spoofing_control")
    )


def user_id(p: Params, name: str = "user_id") -> str:
    value = p.required(name)
    try:
        return parse_uid(value)
    except FaceApiError as exc:
        raise FaceApiError(ErrorCode.INVALID_USERID, exc.detail, field=name) from exc


def group(p: Params, name: str = "group_id") -> str:
    groups = parse_groups(p.required(name), field=name)
    if len(groups) != 1:
        raise FaceApiError(ErrorCode.INVALID_GROUP_ID, f"{name} names one group", field=name)
    return groups[0]


def group_or_all(p: Params) -> str | None:
    """A group_id that may be @ALL (every group of the user): None for @ALL."""
    return None if p.optional("group_id") == ALL_GROUPS else group(p)


def group_list(p: Params) -> list[str]:
    groups = parse_groups(p.required("group_id_list"), field="group_id_list", max_bytes=MAX_GROUP_LIST * 49)
    if len(groups) > MAX_GROUP_LIST:
        raise FaceApiError(ErrorCode.GROUP_LIST_TOO_LARGE, f"at most {MAX_GROUP_LIST} groups")
    return groups


def user_info(p: Params) -> str | None:
    value = p.optional("user_info")
    return None if value is None else parse_user_info(value)


def page(p: Params) -> tuple[int, int]:
    return p.uint("start", 0, minimum=0, maximum=2**31), p.uint("length", 100, minimum=1, maximum=MAX_PAGE)


def threshold(p: Params, default: int) -> int:
    return p.uint("match_threshold", default, minimum=0, maximum=100)
