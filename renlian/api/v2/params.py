"""v2's parameters, declared once for every v2 operation, and its answer shapes.

v2 answers 216100 for most malformed values and 216101 for missing ones; the ids have their own
rules (216111 for a uid). Baidu's document names the photo field `images`, its SDK sends `image`:
both are read.
"""

from __future__ import annotations

from renlian.api import operation as op
from renlian.api.envelope import LIVENESS
from renlian.api.operation import INT, NUM, STR, Param, arr, obj
from renlian.errors import ErrorCode
from renlian.library.ids import MAX_GROUP_CHARS, MAX_GROUP_PARAM_BYTES, MAX_UID_BYTES, MAX_USER_INFO_BYTES

MAX_PAGE = 1000

UID = op.text(
    "uid",
    description=f"letters, digits and _, at most {MAX_UID_BYTES} bytes",
    pattern=op.ID,
    max_length=MAX_UID_BYTES,
    invalid=ErrorCode.INVALID_USERID,
)
GROUPS = Param(
    "group_id",
    op.group_list,
    required=True,
    description=f"comma-separated group ids, each at most {MAX_GROUP_CHARS} characters",
    pattern=op.GROUPS,
    max_length=MAX_GROUP_PARAM_BYTES,
    invalid=ErrorCode.INVALID_GROUP_ID,
)
OPTIONAL_GROUPS = Param(
    "group_id",
    op.group_list,
    description=GROUPS.description,
    pattern=op.GROUPS,
    max_length=MAX_GROUP_PARAM_BYTES,
    invalid=ErrorCode.INVALID_GROUP_ID,
)
USER_INFO = op.text(
    "user_info",
    description=f"at most {MAX_USER_INFO_BYTES} bytes",
    max_length=MAX_USER_INFO_BYTES,
    invalid=ErrorCode.INVALID_USER_INFO,
)
OPTIONAL_USER_INFO = op.optional_text(
    "user_info",
    description=USER_INFO.description,
    max_length=MAX_USER_INFO_BYTES,
    keep_blank=True,
    invalid=ErrorCode.INVALID_USER_INFO,
)
ACTION_TYPE = op.choice("action_type", ("append", "replace"), "append")
# Baidu's paging: `start` is the first position, `end` the number of items to return.
PAGE = (
    op.integer("start", 0, 0, 2**31),
    op.integer("end", 100, 0, MAX_PAGE, description="a count"),
)
EXT_LIVENESS = op.choices("ext_fields", (LIVENESS,))


def group(name: str) -> Param[str]:
    """A parameter that names exactly one group."""
    return Param(
        name,
        op.one_group,
        required=True,
        description=f"letters, digits and _, at most {MAX_GROUP_CHARS}",
        pattern=op.GROUP,
        max_length=MAX_GROUP_CHARS,
    )


def images(limit: int, description: str) -> Param[str]:
    """The photo field, `images` or `image`, under `limit` bytes of base64 text."""
    return op.text(
        "images",
        description=description,
        aliases=("image",),
        max_length=limit - 1,
        over=ErrorCode.IMAGE_SIZE_ERROR,
    )


# Answer shapes --------------------------------------------------------------------------------------

LOCATION = obj(left=INT, top=INT, width=INT, height=INT)
FACE = obj(
    location=LOCATION,
    face_probability=NUM,
    rotation_angle=INT,
    yaw=NUM,
    pitch=NUM,
    roll=NUM,
    landmark=arr(op.POINT),
    landmark72=arr(op.POINT),
    age=NUM,
    gender=STR,
    race=STR,
    beauty=NUM,
)
