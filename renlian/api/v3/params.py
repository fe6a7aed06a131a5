"""v3's parameters, declared once for every v3 operation, and its answer shapes.

A malformed v3 parameter answers its own code (errors.V3_FIELD_ERRORS, picked by the parameter's
name), so most declarations here say only which ErrorCode family a failure belongs to.
"""

from __future__ import annotations

from renlian.api import operation as op
from renlian.api.operation import INT, NUM, STR, Param, Values, fields, obj
from renlian.api.services import Services
from renlian.api.v3.shape import FIELDS
from renlian.core.controls import LEVELS, Controls
from renlian.core.faces import IMAGE_TYPES, ImageRef
from renlian.errors import ErrorCode

PREFIX = "/rest/2.0/face/v3"
ALL_GROUPS = "@ALL"
MAX_GROUP_LIST = 10
MAX_PAGE = 1000
FACE_TYPES = ("LIVE", "IDCARD", "WATERMARK", "CERT", "INFRARED", "HYBRID")

IMAGE = op.text("image", description="base64 of the image file, a URL, or a face_token, per image_type")
IMAGE_TYPE = op.text("image_type", description="how `image` names the image", enum=IMAGE_TYPES)
# face_type names the kind of photo; one model serves them all, so it is checked and not used.
FACE_TYPE = op.choice("face_type", FACE_TYPES, "LIVE", description="the kind of photo (one model serves all)")
QUALITY = op.choice("quality_control", LEVELS, "NONE", description="reject faces below this quality")
LIVENESS = op.choice("liveness_control", LEVELS, "NONE", description="reject faces below this liveness")
# No published thresholds or failure code for spoofing_control's levels: NONE only (detect's
# face_field=spoofing gives the score), any other level refused rather than ignored.
SPOOFING = op.choice(
    "spoofing_control",
    ("NONE",),
    "NONE",
    description="no published thresholds for its levels: NONE only (detect's spoofing gives the score)",
)
CONTROLS: tuple[Param[str], ...] = (FACE_TYPE, QUALITY, LIVENESS, SPOOFING)
USER_ID = op.user_id("user_id")
OPTIONAL_USER_ID = op.optional_user_id("user_id", "only this user's faces are compared")
USER_INFO = op.optional_user_info()


def _group_or_all(raw: str) -> str | None:
    return None if raw == ALL_GROUPS else raw.strip()


GROUP = op.group("group_id")
GROUP_OR_ALL = Param(
    "group_id",
    _group_or_all,
    required=True,
    description="a group id, or @ALL for every group of the user",
    pattern=f"{ALL_GROUPS}|{op.GROUP}",
    invalid=ErrorCode.INVALID_GROUP_ID,
)
GROUP_LIST = op.groups(
    "group_id_list",
    required=True,
    description="comma-separated group ids (or a JSON array)",
    max_items=MAX_GROUP_LIST,
    over=ErrorCode.GROUP_LIST_TOO_LARGE,
)
PAGE = (
    op.integer("start", 0, 0, 2**31, description="offset"),
    op.integer("length", 100, 1, MAX_PAGE, description="page size"),
)
FACE_FIELD = op.choices("face_field", sorted(FIELDS.keys()), description="attributes")


def threshold(default: int) -> Param[int]:
    return op.integer("match_threshold", default, 0, 100)


def image(values: Values, text: Param[str] = IMAGE) -> ImageRef:
    """The image a request names: `text` (IMAGE, or an operation's own declaration of `image`)
    read as its image_type says."""
    return ImageRef(values[IMAGE_TYPE], values[text])


def controls(values: Values) -> Controls:
    return Controls(values[QUALITY], values[LIVENESS])


async def fetched(svc: Services, ref: ImageRef) -> ImageRef:
    """Download a URL image before the inference pool sees it (core/faces.py, download), in the
    fetch pool: a slow image server holds a thread that neither models nor logins need."""
    return await svc.pools.fetch.run(svc.ops.download, ref) if ref.kind == "URL" else ref


# Answer shapes --------------------------------------------------------------------------------------

LOCATION = obj(left=NUM, top=NUM, width=NUM, height=NUM, rotation=INT)
TYPED = obj(type=STR, probability=NUM)
USER = obj(group_id=STR, user_id=STR, user_info=STR, score=NUM)
FACE = obj(
    face_token=STR,
    location=LOCATION,
    angle=obj(**fields(NUM, "yaw", "pitch", "roll")),
    quality=obj(occlusion={"type": "object"}, blur=NUM, illumination=NUM, completeness=INT),
    **fields(NUM, "face_probability", "age", "beauty"),
    **fields(TYPED, "expression", "face_shape", "gender", "glasses", "race", "face_type"),
    **op.LANDMARKS,
)
IMAGE_ERRORS = (*op.IMAGE, ErrorCode.IMAGE_URL_DOWNLOAD_FAIL, ErrorCode.FACE_TOKEN_NOT_EXIST)
CONTROL_ERRORS = (
    ErrorCode.LIVENESS_CHECK_FAIL,
    ErrorCode.FACE_FUZZY,
    ErrorCode.FACE_LIGHT_NOT_GOOD,
    ErrorCode.INCOMPLETE_FACE,
    ErrorCode.LEFT_EYE_OCCLUSION,
    ErrorCode.RIGHT_EYE_OCCLUSION,
    ErrorCode.NOSE_OCCLUSION,
    ErrorCode.MOUTH_OCCLUSION,
    ErrorCode.LEFT_CHEEK_OCCLUSION,
    ErrorCode.RIGHT_CHEEK_OCCLUSION,
    ErrorCode.CHIN_OCCLUSION,
)
LIBRARY = (ErrorCode.USER_NOT_EXIST, ErrorCode.GROUP_NOT_EXIST, ErrorCode.DB_ERROR)
