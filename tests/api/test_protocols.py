"""v2 and v3 are two adapters over one core: each pair of equivalent operations answers the same faces,
the same scores and the same failure (each in its protocol's code), through a real server.

Pairs: detect and detect, match and match, identify and search, verify and search with a user_id,
user/add and user/add, user/get and user/get. A user enrolled through v2 is what both protocols search.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.conftest import Server, b64, read

V2 = "/rest/2.0/face/v2"
V3 = "/rest/2.0/face/v3"


def v2(server: Server, path: str, fields: dict[str, Any]) -> dict[str, Any]:
    answer = httpx.post(
        f"{server.base_url}{V2}/{path}", params={"access_token": server.token}, data=fields, timeout=120
    )
    found: dict[str, Any] = answer.json()
    return found


def v3(server: Server, path: str, body: Any) -> dict[str, Any]:
    answer = httpx.post(
        f"{server.base_url}{V3}/{path}", params={"access_token": server.token}, json=body, timeout=120
    )
    found: dict[str, Any] = answer.json()
    return found


def image(text: str) -> dict[str, str]:
    return {"image": text, "image_type": "BASE64"}


@pytest.fixture(scope="module")
def photos(astronaut: np.ndarray, hopper: np.ndarray) -> dict[str, str]:
    blank = np.full((200, 200, 3), 180, np.uint8)
    return {
        "astronaut": b64(astronaut),
        # The same person again, not the same bytes: a real comparison, not a file's checksum.
        "astronaut_small": b64(cv2.resize(astronaut, (384, 384))),
        "hopper": b64(hopper),
        "obama": b64(read("obama.jpg")),
        "no_face": b64(blank),
    }


@pytest.fixture(scope="module")
def enrolled(server: Server, photos: dict[str, str]) -> str:
    for uid, photo in (("pr_astronaut", "astronaut"), ("pr_hopper", "hopper")):
        fields = {"uid": uid, "user_info": uid, "group_id": "protocols", "images": photos[photo]}
        assert "error_code" not in v2(server, "faceset/user/add", fields)
    return "protocols"


def test_detect_finds_the_same_faces(server: Server, photos: dict[str, str]) -> None:
    for photo in ("astronaut", "obama", "no_face"):
        old = v2(server, "detect", {"image": photos[photo], "max_face_num": 5})
        new = v3(server, "detect", {**image(photos[photo]), "max_face_num": 5})["result"]
        assert old["result_num"] == new["face_num"], photo
        for face2, face3 in zip(old["result"], new["face_list"], strict=True):
            assert face2["face_probability"] == pytest.approx(face3["face_probability"], abs=1e-4)
            for key in ("left", "top", "width", "height"):
                assert face2["location"][key] == pytest.approx(face3["location"][key], abs=1)
            assert face2["yaw"] == pytest.approx(face3["angle"]["yaw"], abs=0.01)


def test_match_scores_the_same(server: Server, photos: dict[str, str]) -> None:
    for first, second in (("astronaut", "astronaut_small"), ("astronaut", "hopper")):
        old = v2(server, "match", {"images": f"{photos[first]},{photos[second]}"})
        new = v3(server, "match", [image(photos[first]), image(photos[second])])
        assert old["result"][0]["score"] == new["result"]["score"], (first, second)
    same = v2(server, "match", {"images": f"{photos['astronaut']},{photos['astronaut_small']}"})
    other = v2(server, "match", {"images": f"{photos['astronaut']},{photos['hopper']}"})
    assert same["result"][0]["score"] > other["result"][0]["score"] + 20


def test_identify_and_search_find_the_same_users(
    server: Server, photos: dict[str, str], enrolled: str
) -> None:
    for photo, uid in (("astronaut_small", "pr_astronaut"), ("hopper", "pr_hopper")):
        old = v2(server, "identify", {"group_id": enrolled, "images": photos[photo], "user_top_num": 2})
        new = v3(server, "search", {**image(photos[photo]), "group_id_list": enrolled, "max_user_num": 2})
        users = new["result"]["user_list"]
        assert (
            [hit["uid"] for hit in old["result"]]
            == [user["user_id"] for user in users]
            == [
                uid,
                *({"pr_astronaut", "pr_hopper"} - {uid}),
            ]
        )
        assert [hit["scores"][0] for hit in old["result"]] == [user["score"] for user in users]


def test_verify_and_search_for_a_user_score_the_same(
    server: Server, photos: dict[str, str], enrolled: str
) -> None:
    for photo in ("astronaut_small", "hopper"):
        old = v2(server, "verify", {"uid": "pr_astronaut", "group_id": enrolled, "images": photos[photo]})
        body = {**image(photos[photo]), "group_id_list": enrolled, "user_id": "pr_astronaut"}
        new = v3(server, "search", body)
        assert old["result"] == [user["score"] for user in new["result"]["user_list"]], photo


def test_user_get_reads_the_same_record(server: Server, enrolled: str) -> None:
    old = v2(server, "faceset/user/get", {"uid": "pr_hopper"})["result"]
    new = v3(server, "faceset/user/get", {"user_id": "pr_hopper", "group_id": "@ALL"})["result"]["user_list"]
    assert [(r["group_id"], r["user_info"]) for r in old] == [(r["group_id"], r["user_info"]) for r in new]


def test_user_add_keeps_the_same_face(server: Server, photos: dict[str, str]) -> None:
    """v2 and v3 user/add enrol a photo through the same core enrolment: the same face, named by
    the same token, found with the same score."""
    photo = photos["astronaut_small"]
    # Apart: v3 refuses a photo its group already holds (223105).
    fields = {"uid": "pr_v2", "user_info": "v2", "group_id": "protocols_v2", "images": photo}
    assert "error_code" not in v2(server, "faceset/user/add", fields)
    added = v3(server, "faceset/user/add", {**image(photo), "group_id": "protocols_v3", "user_id": "pr_v3"})
    assert added["error_code"] == 0, added
    listed = [
        v3(server, "faceset/face/getlist", {"user_id": f"pr_{protocol}", "group_id": f"protocols_{protocol}"})
        for protocol in ("v2", "v3")
    ]
    tokens = [answer["result"]["face_list"][0]["face_token"] for answer in listed]
    assert tokens[0] == tokens[1] == added["result"]["face_token"]
    body = {**image(photos["astronaut"]), "group_id_list": "protocols_v2,protocols_v3", "max_user_num": 2}
    scores = {user["user_id"]: user["score"] for user in v3(server, "search", body)["result"]["user_list"]}
    assert scores["pr_v2"] == scores["pr_v3"] > 80


@pytest.mark.parametrize(
    ("v2_call", "v3_call", "v2_code", "v3_code"),
    [
        # No face where one is needed: FACE_NOT_FOUND.
        (
            ("match", {"images": "{no_face},{astronaut}"}),
            ("match", ["{no_face}", "{astronaut}"]),
            216402,
            222202,
        ),
        (
            ("identify", {"group_id": "protocols", "images": "{no_face}"}),
            ("search", {"image": "{no_face}", "group_id_list": "protocols"}),
            216402,
            222202,
        ),
        # A group that does not exist: GROUP_NOT_EXIST.
        (
            ("identify", {"group_id": "nowhere", "images": "{hopper}"}),
            ("search", {"image": "{hopper}", "group_id_list": "nowhere"}),
            216618,
            223100,
        ),
        # Not an image: EMPTY_IMAGE.
        (("detect", {"image": "not base64!"}), ("detect", {"image": "not base64!"}), 216200, 222013),
        (
            (
                "faceset/user/add",
                {"uid": "u", "user_info": "u", "group_id": "protocols", "images": "{no_face}"},
            ),
            ("faceset/user/add", {"image": "{no_face}", "group_id": "protocols", "user_id": "u"}),
            216402,
            222202,
        ),
        # A malformed uid: INVALID_USERID.
        (
            ("faceset/user/get", {"uid": "no-such"}),
            ("faceset/user/get", {"user_id": "no-such", "group_id": "@ALL"}),
            216111,
            222018,
        ),
        # An unknown user: USER_NOT_EXIST.
        (
            ("faceset/user/get", {"uid": "nobody"}),
            ("faceset/user/get", {"user_id": "nobody", "group_id": "@ALL"}),
            216611,
            223103,
        ),
    ],
)
def test_the_same_failure_in_each_protocols_code(
    server: Server,
    photos: dict[str, str],
    enrolled: str,
    v2_call: tuple[str, dict[str, str]],
    v3_call: tuple[str, Any],
    v2_code: int,
    v3_code: int,
) -> None:
    def filled(value: str) -> str:
        return value.format(**photos)

    path2, fields2 = v2_call
    assert v2(server, path2, {k: filled(v) for k, v in fields2.items()})["error_code"] == v2_code
    path3, body3 = v3_call
    body: Any
    if isinstance(body3, list):
        body = [image(filled(item)) for item in body3]
    else:
        body = {k: filled(v) for k, v in body3.items()} | (
            {"image_type": "BASE64"} if "image" in body3 else {}
        )
    assert v3(server, path3, body)["error_code"] == v3_code


def test_v2_and_v3_routes_go_through_the_core() -> None:
    """Neither adapter reaches past the core and the library's operations: no analyzer, index or store."""
    api = Path(__file__).parents[2] / "renlian" / "api"
    modules = sorted([*api.glob("v2/*.py"), *api.glob("v3/*.py")])
    assert len(modules) >= 10
    for module in modules:
        source = module.read_text()
        assert not re.search(
            r"svc\.analyzer|library\.(store|index|analyzer)|search_embeddings|\.index\b", source
        ), module
