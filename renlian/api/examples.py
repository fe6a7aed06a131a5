"""An example request and answer for every operation of the API reference (/openapi.json, /docs).

The requests are written here, by operation path, with placeholders where a real value is the
caller's own (a photo's base64, a face_token from an earlier answer). The answers are what the server
answered those requests, recorded by tests/console/test_reference.py, which also runs every example
against a real server on each test run and fails when an answer no longer has the recorded shape:
`RENLIAN_RECORD_EXAMPLES=1 .venv/bin/pytest tests/console/test_reference.py` records them again.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

PHOTO = "<base64 of a photo>"
SAME_PERSON = "<base64 of another photo of the same person>"
SOMEONE_ELSE = "<base64 of a photo of someone else>"
FACE_TOKEN = "<a face_token of the user, from face/getlist>"
API_KEY = "<API key of the app>"
SECRET_KEY = "<secret key of the app>"
# What a recorded answer shows instead of the tokens the recording run was given.
RECORDED_TOKEN = "<access token>"

ANSWERS = Path(__file__).parent / "static" / "examples.json"

V2 = "/rest/2.0/face/v2"
V2_FACESET = f"{V2}/faceset"
V3 = "/rest/2.0/face/v3"
V3_FACESET = f"{V3}/faceset"
TOKEN = "/oauth/2.0/token"
GROUP = "example_group"
COPY = "example_copy"
USER = "example_user"
V2_GROUP = "example_v2"
V2_OTHER = "example_v2_other"
V2_USER = "example_v2_user"

_DETECT_V2 = {"image": PHOTO, "max_face_num": 1, "face_fields": "age,gender"}

# An operation's example request: its form fields (v2, the token), its JSON object or array (v3).
REQUESTS: dict[str, Any] = {
    TOKEN: {"grant_type": "client_credentials", "client_id": API_KEY, "client_secret": SECRET_KEY},
    "/rest/2.0/face/v1/detect": _DETECT_V2,
    f"{V2}/detect": _DETECT_V2,
    f"{V2}/match": {"images": f"{PHOTO},{SOMEONE_ELSE}"},
    f"{V2_FACESET}/user/add": {
        "uid": V2_USER,
        "user_info": "Eileen Collins",
        "group_id": V2_GROUP,
        "images": PHOTO,
    },
    f"{V2}/identify": {"group_id": V2_GROUP, "images": SAME_PERSON, "user_top_num": 1},
    f"{V2}/verify": {"uid": V2_USER, "group_id": V2_GROUP, "images": SAME_PERSON},
    f"{V2_FACESET}/user/get": {"uid": V2_USER},
    f"{V2_FACESET}/group/getlist": {"start": 0, "end": 10},
    f"{V2_FACESET}/group/getusers": {"group_id": V2_GROUP, "start": 0, "end": 10},
    f"{V2_FACESET}/group/adduser": {"uid": V2_USER, "group_id": V2_OTHER, "src_group_id": V2_GROUP},
    f"{V2_FACESET}/group/deleteuser": {"uid": V2_USER, "group_id": V2_OTHER},
    f"{V2_FACESET}/user/update": {
        "uid": V2_USER,
        "images": SAME_PERSON,
        "group_id": V2_GROUP,
        "action_type": "replace",
    },
    f"{V2_FACESET}/user/delete": {"uid": V2_USER},
    f"{V3_FACESET}/group/add": {"group_id": GROUP},
    f"{V3_FACESET}/user/add": {
        "image": PHOTO,
        "image_type": "BASE64",
        "group_id": GROUP,
        "user_id": USER,
        "user_info": "Eileen Collins",
        "quality_control": "NORMAL",
    },
    f"{V3_FACESET}/user/update": {
        "image": SAME_PERSON,
        "image_type": "BASE64",
        "group_id": GROUP,
        "user_id": USER,
        "user_info": "Eileen Collins, commander",
    },
    f"{V3_FACESET}/user/get": {"user_id": USER, "group_id": GROUP},
    f"{V3_FACESET}/face/getlist": {"user_id": USER, "group_id": GROUP},
    f"{V3_FACESET}/group/getlist": {"start": 0, "length": 10},
    f"{V3_FACESET}/group/getusers": {"group_id": GROUP, "start": 0, "length": 10},
    f"{V3_FACESET}/user/copy": {"user_id": USER, "src_group_id": GROUP, "dst_group_id": COPY},
    f"{V3}/detect": {
        "image": PHOTO,
        "image_type": "BASE64",
        "face_field": "age,gender,quality",
        "max_face_num": 2,
    },
    f"{V3}/match": [{"image": PHOTO, "image_type": "BASE64"}, {"image": SAME_PERSON, "image_type": "BASE64"}],
    f"{V3}/search": {"image": PHOTO, "image_type": "BASE64", "group_id_list": GROUP, "max_user_num": 1},
    f"{V3}/multi-search": {
        "image": PHOTO,
        "image_type": "BASE64",
        "group_id_list": GROUP,
        "max_face_num": 2,
        "match_threshold": 70,
    },
    f"{V3}/faceverify": [{"image": PHOTO, "image_type": "BASE64", "face_field": "quality"}],
    f"{V3_FACESET}/user/delete": {"user_id": USER, "group_id": COPY},
    f"{V3_FACESET}/face/delete": {"user_id": USER, "group_id": GROUP, "face_token": FACE_TOKEN},
    f"{V3_FACESET}/group/delete": {"group_id": COPY},
}

# Groups an example needs that no earlier example makes (user/copy's destination, adduser's).
PREREQUISITE_GROUPS = (COPY,)


@cache
def answers() -> dict[str, Any]:
    """The recorded answers, by operationId."""
    if not ANSWERS.exists():
        return {}
    recorded: dict[str, Any] = json.loads(ANSWERS.read_text())
    return recorded
