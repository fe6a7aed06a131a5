"""Baidu's rules for the library's names: user ids, group ids and user_info, with their limits.

What the library accepts from any door: the CLI (`renlian import`, `--group`), the console, and,
stated again as each operation's declared patterns and limits (api/operation.py), the two protocols.
"""

from __future__ import annotations

import re

from renlian.errors import ErrorCode, FaceApiError

# ASCII only, matched whole: `$` alone would let a trailing newline through.
ID_PATTERN = r"[A-Za-z0-9_]+"
_ID = re.compile(ID_PATTERN)
MAX_UID_BYTES = 128
MAX_GROUP_CHARS = 48
MAX_GROUP_PARAM_BYTES = 128
MAX_USER_INFO_BYTES = 256


def parse_uid(value: str) -> str:
    if not _ID.fullmatch(value) or len(value.encode()) > MAX_UID_BYTES:
        raise FaceApiError(
            ErrorCode.INVALID_USERID, f"uid must be 1-{MAX_UID_BYTES} bytes of letters, digits and _"
        )
    return value


def parse_groups(value: str, field: str = "group_id", max_bytes: int = MAX_GROUP_PARAM_BYTES) -> list[str]:
    """A comma-separated group_id list: each of letters, digits and _, at most 48 characters."""
    if len(value.encode()) > max_bytes:
        raise FaceApiError(
            ErrorCode.INVALID_GROUP_ID, f"{field} is longer than {max_bytes} bytes", field=field
        )
    groups = [group.strip() for group in value.split(",")]
    for group in groups:
        if not _ID.fullmatch(group) or len(group) > MAX_GROUP_CHARS:
            raise FaceApiError(
                ErrorCode.INVALID_GROUP_ID,
                f"each group id must be 1-{MAX_GROUP_CHARS} letters, digits and _ (got {group[:60]!r})",
                field=field,
            )
    return list(dict.fromkeys(groups))


def parse_user_info(value: str) -> str:
    if len(value.encode()) > MAX_USER_INFO_BYTES:
        raise FaceApiError(
            ErrorCode.INVALID_USER_INFO, f"user_info is longer than {MAX_USER_INFO_BYTES} bytes"
        )
    return value
