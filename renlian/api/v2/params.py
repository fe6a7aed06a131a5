"""v2's parameters, declared once for every v2 operation, and its answer shapes.

v2 answers 216100 for most malformed values and 216101 for missing ones; the ids have their own
rules (216111 for a uid). Baidu's document names the photo field `images`, its SDK sends `image`:
both are read.
"""

from __future__ import annotations

from renlian.api import operation as op
from renlian.api.envelope import LIVENESS
from renlian.api.operation import INT, NUM, STR, Param, fields, obj
from renlian.errors import ErrorCode
from renlian.library.ids import MAX_GROUP_CHARS, MAX_GROUP_PARAM_BYTES

MAX_PAGE = 1000

UID = op.user_id("uid")
_GROUPS = {
    "description": f"comma-separated group ids, each at most {MAX_GROUP_CHARS} characters",
    "max_length": MAX_GROUP_PARAM_BYTES,
}
GROUPS = op.groups("group_id", required=True, **_GROUPS)
OPTIONAL_GROUPS = op.groups("group_id", required=False, default=None, **_GROUPS)
USER_INFO = op.user_info()
OPTIONAL_USER_INFO = op.optional_user_info()
ACTION_TYPE = op.choice("action_type", ("append", "replace"), "append")
# Baidu's paging: `start` is the first position, `end` the number of items to return.
PAGE = (
    op.integer("start", 0, 0, 2**31),
    op.integer("end", 100, 0, MAX_PAGE, description="a count"),
)
EXT_LIVENESS = op.choices("ext_fields", (LIVENESS,))


def group(name: str) -> Param[str]:
    """A parameter that names exactly one group; a bad one is v2's plain 216100."""
    return op.group(name, ErrorCode.INVALID_PARAM)


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
    rotation_angle=INT,
    **fields(NUM, "face_probability", "yaw", "pitch", "roll", "age", "beauty"),
    **fields(STR, "gender", "race"),
    **op.LANDMARKS,
)
