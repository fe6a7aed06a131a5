"""Baidu's error codes for both protocols: the one table every layer raises from.

Each member names one failure and carries the code and message that the v2 protocol answers with,
then those of v3: vision/ raises FaceApiError for bad images and missing faces, library/ and store/
for the face library, api/ for bad parameters, and each protocol's envelope picks its own pair.
Messages are Baidu's, byte for byte (typos included), because client code matches on them; the
optional detail travels beside them as error_detail, for humans.

A member only one protocol can meet still has the other's pair, so that the table stays total; those
pairs are the nearest code of that protocol, and docs/compat.md lists every choice.
"""

from __future__ import annotations

from enum import Enum

_V2_INVALID = (216100, "invalid param")


class ErrorCode(Enum):
    # Gateway codes: the same in both protocols.
    CLUSTER_LIMIT = (4, "Open api request limit reached", 4, "Open api request limit reached")
    DAILY_LIMIT = (17, "Open api daily request limit reached", 17, "Open api daily request limit reached")
    QPS_LIMIT = (18, "Open api qps request limit reached", 18, "Open api qps request limit reached")
    TOTAL_LIMIT = (19, "Open api total request limit reached", 19, "Open api total request limit reached")
    INVALID_TOKEN_PARAM = (100, "Invalid parameter", 100, "Invalid parameter")
    TOKEN_INVALID = (
        110,
        "Access token invalid or no longer valid",
        110,
        "Access token invalid or no longer valid",
    )
    TOKEN_EXPIRED = (111, "Access token expired", 111, "Access token expired")
    MODULE_CLOSED = (216015, "module closed", 6, "no permission to access data")
    # Parameters. In v3 a bad parameter has a code of its own (V3_FIELD_ERRORS below).
    INVALID_PARAM = (*_V2_INVALID, 216100, "invalid param")
    NOT_ENOUGH_PARAM = (216101, "not enough param", 222001, "param[] is null")
    SERVICE_NOT_SUPPORT = (216102, "service not support", 3, "Unsupported openapi method")
    PARAM_TOO_LONG = (216103, "param too long", 222208, "the number of image is incorrect")
    APPID_NOT_EXIST = (216110, "appid not exist", 15, "app not exsits or create failed")
    INVALID_USERID = (216111, "invalid userid", 222018, "param[user_id] format error")
    INVALID_GROUP_ID = (*_V2_INVALID, 222006, "group_id format error")
    INVALID_USER_INFO = (*_V2_INVALID, 222010, "user_info format error")
    # Images.
    EMPTY_IMAGE = (216200, "empty image", 222013, "param[image] format error")
    IMAGE_FORMAT_ERROR = (216201, "image format error", 222203, "image check fail")
    IMAGE_SIZE_ERROR = (216202, "image size error", 222203, "image check fail")
    IMAGE_URL_DOWNLOAD_FAIL = (216201, "image format error", 222204, "image_url_download_fail")
    FACE_TOKEN_NOT_EXIST = (*_V2_INVALID, 222209, "face token not exist")
    FACE_NOT_FOUND = (216402, "face not found", 222202, "pic not has face")
    NOT_ENOUGH_IMAGES = (216614, "not enough images", 222208, "the number of image is incorrect")
    FAIL_TO_PROCESS_IMAGES = (216615, "fail to process images", 222203, "image check fail")
    # The service.
    DB_ERROR = (216300, "db error", 222302, "system error")
    # The store is fine but this node's index is not known to hold every acknowledged write of the
    # app (being rebuilt, or the change feed not followed in time): Baidu's codes for a system error.
    INDEX_NOT_CURRENT = (216300, "db error", 222302, "system error")
    BACKEND_ERROR = (216400, "backend error", 222201, "network not available")
    INTERNAL_ERROR = (216401, "internal error", 2, "Service temporarily unavailable")
    UNKNOWN_ERROR = (216500, "unknown error", 1, "Unknown error")
    # The face library.
    USER_NOT_EXIST = (216611, "user not exist", 223103, "user is not exist")
    FAIL_TO_DELETE_USER = (216613, "fail to delete user record", 223103, "user is not exist")
    IMAGE_EXISTED = (216616, "image existed", 223105, "face is already exist")
    FAIL_TO_ADD_USER = (216617, "fail to add user", 222300, "add face fail")
    # v2 knows a group only while it holds users, hence its message.
    GROUP_NOT_EXIST = (216618, "no user in group", 223100, "group is not exist")
    USER_MUST_BE_IN_ONE_GROUP = (216619, "user must be in one group at least", 223103, "user is not exist")
    ADD_USER_OVERLIMIT = (216631, "request add user overlimit", 222300, "add face fail")
    GROUP_EXISTS = (*_V2_INVALID, 223101, "group is already exist")
    USER_EXISTS = (216100, "already add", 223102, "user is already exist")
    DST_GROUP_NOT_EXIST = (216618, "no user in group", 223111, "dst group is not exist")
    FACE_NOT_EXIST = (216611, "user not exist", 223106, "face is not exist")
    GROUP_LIST_TOO_LARGE = (*_V2_INVALID, 223104, "group_list is too large")
    MATCH_USER_NOT_FOUND = (216618, "no user in group", 222207, "match user is not found")
    # v3's quality_control and liveness_control.
    QUALITY_CONTROL_ERROR = (*_V2_INVALID, 223118, "quality control error")
    LIVENESS_CONTROL_ERROR = (*_V2_INVALID, 223119, "liveness control item error")
    FACE_COVERED = (*_V2_INVALID, 223113, "face is covered")
    FACE_FUZZY = (*_V2_INVALID, 223114, "face is fuzzy")
    FACE_LIGHT_NOT_GOOD = (*_V2_INVALID, 223115, "face light is not good")
    INCOMPLETE_FACE = (*_V2_INVALID, 223116, "incomplete face")
    LIVENESS_CHECK_FAIL = (*_V2_INVALID, 223120, "liveness check fail")
    LEFT_EYE_OCCLUSION = (*_V2_INVALID, 223121, "left eye is occlusion")
    RIGHT_EYE_OCCLUSION = (*_V2_INVALID, 223122, "right eye is occlusion")
    LEFT_CHEEK_OCCLUSION = (*_V2_INVALID, 223123, "left cheek is occlusion")
    RIGHT_CHEEK_OCCLUSION = (*_V2_INVALID, 223124, "right cheek is occlusion")
    CHIN_OCCLUSION = (*_V2_INVALID, 223125, "chin contour is occlusion")
    NOSE_OCCLUSION = (*_V2_INVALID, 223126, "nose is occlusion")
    MOUTH_OCCLUSION = (*_V2_INVALID, 223127, "mouth is occlusion")

    code: int  # v2
    message: str  # v2
    v3_code: int
    v3_message: str

    def __new__(cls, code: int, message: str, v3_code: int, v3_message: str) -> ErrorCode:
        # Members are told apart by name, not by their codes: several failures share a code in one
        # protocol (v2 answers many of them with 216100), and equal values would make them aliases.
        member = object.__new__(cls)
        member._value_ = len(cls.__members__)
        member.code, member.message, member.v3_code, member.v3_message = code, message, v3_code, v3_message
        return member


# v3 gives most parameters a "format error" code of its own; a parameter not listed has none in any
# source, and answers 216100 "invalid param" as v2 does (docs/compat.md).
V3_FIELD_ERRORS: dict[str, tuple[int, str]] = {
    "start": (222002, "param[start] format error"),
    "length": (222003, "param[length] format error"),
    "group_id_list": (222005, "param[group_id_list] format error"),
    "group_id": (222006, "group_id format error"),
    "src_group_id": (222006, "group_id format error"),
    "dst_group_id": (222006, "group_id format error"),
    "user_info": (222010, "user_info format error"),
    "image": (222013, "param[image] format error"),
    "image_type": (222015, "param[image_type] format error"),
    "max_face_num": (222016, "param[max_face_num] format error"),
    "face_field": (222017, "param[face_field] format error"),
    "user_id": (222018, "param[user_id] format error"),
    "quality_control": (222019, "param[quality_control] format error"),
    "liveness_control": (222020, "param[liveness_control] format error"),
    "max_user_num": (222021, "param[max_user_num] format error"),
    "face_type": (222024, "param[face_type] format error"),
    "face_token": (222025, "param[face_token] format error"),
}

# The members that mean "this parameter is malformed": in v3 their code comes from the parameter.
_FORMAT_ERRORS = frozenset(
    {
        ErrorCode.INVALID_PARAM,
        ErrorCode.INVALID_USERID,
        ErrorCode.INVALID_GROUP_ID,
        ErrorCode.INVALID_USER_INFO,
    }
)


class FaceApiError(Exception):
    """A request failed in a way the Baidu protocols have a code for."""

    def __init__(
        self,
        error: ErrorCode,
        detail: str | None = None,
        message: str | None = None,
        *,
        field: str | None = None,
    ) -> None:
        """`message` replaces the v2 table's text where Baidu's document shows an endpoint answering
        with another (group/adduser's "already add" under 216100). `field` names the parameter at
        fault, which decides the v3 code of a format error and the text of a missing parameter."""
        self.error = error
        self.detail = detail
        self.message = message or error.message
        self.field = field
        super().__init__(f"{error.code} {self.message}" + (f": {detail}" if detail else ""))

    def v3(self) -> tuple[int, str]:
        """The v3 code and message."""
        if self.field is not None:
            if self.error is ErrorCode.NOT_ENOUGH_PARAM:
                return self.error.v3_code, f"param[{self.field}] is null"
            if self.error in _FORMAT_ERRORS and self.field in V3_FIELD_ERRORS:
                return V3_FIELD_ERRORS[self.field]
        return self.error.v3_code, self.error.v3_message
