"""Baidu Face API v2 error codes: the one table every layer raises from.

vision/ raises FaceApiError for bad images and missing faces, api/ for bad parameters; the HTTP layer
renders every one as {error_code, error_msg, log_id}. Messages are Baidu's, byte for byte, because
client code matches on them; the optional detail travels beside them as error_detail, for humans.
"""

from __future__ import annotations

from enum import Enum


class ErrorCode(Enum):
    CLUSTER_LIMIT = (4, "Open api request limit reached")
    DAILY_LIMIT = (17, "Open api daily request limit reached")
    QPS_LIMIT = (18, "Open api qps request limit reached")
    TOTAL_LIMIT = (19, "Open api total request limit reached")
    INVALID_TOKEN_PARAM = (100, "Invalid parameter")
    TOKEN_INVALID = (110, "Access token invalid or no longer valid")
    TOKEN_EXPIRED = (111, "Access token expired")
    MODULE_CLOSED = (216015, "module closed")
    INVALID_PARAM = (216100, "invalid param")
    NOT_ENOUGH_PARAM = (216101, "not enough param")
    SERVICE_NOT_SUPPORT = (216102, "service not support")
    PARAM_TOO_LONG = (216103, "param too long")
    APPID_NOT_EXIST = (216110, "appid not exist")
    INVALID_USERID = (216111, "invalid userid")
    EMPTY_IMAGE = (216200, "empty image")
    IMAGE_FORMAT_ERROR = (216201, "image format error")
    IMAGE_SIZE_ERROR = (216202, "image size error")
    DB_ERROR = (216300, "db error")
    BACKEND_ERROR = (216400, "backend error")
    INTERNAL_ERROR = (216401, "internal error")
    FACE_NOT_FOUND = (216402, "face not found")
    UNKNOWN_ERROR = (216500, "unknown error")
    USER_NOT_EXIST = (216611, "user not exist")
    FAIL_TO_DELETE_USER = (216613, "fail to delete user record")
    NOT_ENOUGH_IMAGES = (216614, "not enough images")
    FAIL_TO_PROCESS_IMAGES = (216615, "fail to process images")
    IMAGE_EXISTED = (216616, "image existed")
    FAIL_TO_ADD_USER = (216617, "fail to add user")
    NO_USER_IN_GROUP = (216618, "no user in group")
    USER_MUST_BE_IN_ONE_GROUP = (216619, "user must be in one group at least")
    ADD_USER_OVERLIMIT = (216631, "request add user overlimit")

    @property
    def code(self) -> int:
        return self.value[0]

    @property
    def message(self) -> str:
        return self.value[1]


class FaceApiError(Exception):
    """A request failed in a way the Baidu protocol has a code for."""

    def __init__(self, error: ErrorCode, detail: str | None = None, message: str | None = None) -> None:
        """`message` replaces the table's text where Baidu's document shows an endpoint answering
        with another (group/adduser's "already add" under 216100)."""
        self.error = error
        self.detail = detail
        self.message = message or error.message
        super().__init__(f"{error.code} {self.message}" + (f": {detail}" if detail else ""))
