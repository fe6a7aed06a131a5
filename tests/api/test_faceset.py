"""The face library endpoints over real HTTP: every operation, its errors, and read-your-writes."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from tests.conftest import Server, b64

FACESET = "/rest/2.0/face/v2/faceset"
IDENTIFY = "/rest/2.0/face/v2/identify"
VERIFY = "/rest/2.0/face/v2/verify"


@pytest.fixture
def group() -> str:
    """A fresh group per test, so that tests sharing the server never see each other's users."""
    return "g_" + uuid.uuid4().hex[:12]


@pytest.fixture
def photos(astronaut: np.ndarray, hopper: np.ndarray) -> dict[str, str]:
    return {
        "collins": b64(astronaut),
        "collins_mirror": b64(np.ascontiguousarray(astronaut[:, ::-1])),
        "collins_small": b64(astronaut[::2, ::2]),
        "hopper": b64(hopper),
        "blank": b64(np.full((200, 200, 3), 127, np.uint8)),
    }


Call = Callable[..., dict[str, Any]]


@pytest.fixture
def call(server: Server) -> Call:
    def run(path: str, **fields: str) -> dict[str, Any]:
        return server.call(path if path.startswith("/rest") else FACESET + path, **fields)

    return run


def code(body: dict[str, Any]) -> object:
    return body.get("error_code")


def test_add_then_identify_at_once(call: Call, group: str, photos: dict[str, str]) -> None:
    assert (
        code(
            call(
                "/user/add",
                uid="collins",
                user_info="Eileen Collins",
                group_id=group,
                images=photos["collins"],
            )
        )
        is None
    )
    assert (
        code(
            call("/user/add", uid="hopper", user_info="Grace Hopper", group_id=group, image=photos["hopper"])
        )
        is None
    )
    body = call(IDENTIFY, group_id=group, images=photos["collins_mirror"], user_top_num="2")
    assert body["result_num"] == 2
    first, second = body["result"]
    assert (first["uid"], first["user_info"], first["group_id"]) == ("collins", "Eileen Collins", group)
    assert first["scores"][0] > 80 > second["scores"][0]
    single = call(IDENTIFY, group_id=group, image=photos["hopper"])
    assert single["result_num"] == 1 and single["result"][0]["uid"] == "hopper"


def test_verify_scores_the_claimed_user(call: Call, group: str, photos: dict[str, str]) -> None:
    call("/user/add", uid="collins", user_info="c", group_id=group, image=photos["collins"])
    call("/user/add", uid="collins", user_info="c", group_id=group, image=photos["collins_small"])
    call("/user/add", uid="hopper", user_info="h", group_id=group, image=photos["hopper"])
    same = call(VERIFY, uid="collins", group_id=group, image=photos["collins_mirror"], top_num="2")
    assert same["result_num"] == 2 and all(s > 80 for s in same["result"])
    other = call(VERIFY, uid="hopper", group_id=group, image=photos["collins_mirror"])
    assert other["result_num"] == 1 and other["result"][0] < 80
    assert code(call(VERIFY, uid="nobody", group_id=group, image=photos["collins"])) == 216611


def test_identify_errors(call: Call, group: str, photos: dict[str, str]) -> None:
    assert code(call(IDENTIFY, group_id=group, image=photos["collins"])) == 216618
    call("/user/add", uid="collins", user_info="c", group_id=group, image=photos["collins"])
    assert code(call(IDENTIFY, group_id=group, image=photos["blank"])) == 216402
    assert code(call(IDENTIFY, group_id=group, image=photos["collins"], user_top_num="6")) == 216100
    assert code(call(IDENTIFY, group_id=group, image=photos["collins"], ext_fields="tattoos")) == 216100
    assert code(call(IDENTIFY, group_id=f"{group},empty_{group[2:]}", image=photos["collins"])) == 216618
    assert code(call(IDENTIFY, image=photos["collins"])) == 216101
    liveness = call(IDENTIFY, group_id=group, image=photos["collins"], ext_fields="faceliveness")
    assert liveness["result_num"] == 1 and 0 <= float(liveness["ext_info"][0]["faceliveness"]) <= 1
    verified = call(VERIFY, uid="collins", group_id=group, image=photos["collins"], ext_fields="faceliveness")
    assert verified["ext_info"] == liveness["ext_info"]  # the same probe photo, the same score
    assert "ext_info" not in call(IDENTIFY, group_id=group, image=photos["collins"])


def test_identify_across_groups(call: Call, group: str, photos: dict[str, str]) -> None:
    other = group + "_b"
    call("/user/add", uid="collins", user_info="c", group_id=group, image=photos["collins"])
    call("/user/add", uid="hopper", user_info="h", group_id=other, image=photos["hopper"])
    body = call(IDENTIFY, group_id=f"{group},{other}", image=photos["hopper"], user_top_num="2")
    assert [(r["group_id"], r["uid"]) for r in body["result"]] == [(other, "hopper"), (group, "collins")]


def test_add_validation(call: Call, group: str, photos: dict[str, str]) -> None:
    image = photos["collins"]
    assert code(call("/user/add", uid="bad uid", user_info="x", group_id=group, image=image)) == 216111
    assert code(call("/user/add", uid="u" * 129, user_info="x", group_id=group, image=image)) == 216111
    assert code(call("/user/add", uid="ok", user_info="x" * 257, group_id=group, image=image)) == 216100
    assert code(call("/user/add", uid="ok", user_info="x", group_id="bad-group", image=image)) == 216100
    assert code(call("/user/add", uid="ok", user_info="x", group_id="g" * 49, image=image)) == 216100
    assert (
        code(call("/user/add", uid="ok", user_info="x", group_id=group, image=image, action_type="merge"))
        == 216100
    )
    assert code(call("/user/add", uid="ok", group_id=group, image=image)) == 216101
    assert code(call("/user/add", uid="ok", user_info="x", group_id=group)) == 216101
    assert code(call("/user/add", uid="ok", user_info="x", group_id=group, image=photos["blank"])) == 216402
    assert (
        code(call("/user/add", uid="ok", user_info="x", group_id=group, image=f"{image},{image}")) == 216100
    )
    # Nothing of the refused requests was stored.
    assert code(call("/group/getusers", group_id=group)) == 216618


def test_same_image_twice_and_replace(call: Call, group: str, photos: dict[str, str]) -> None:
    call("/user/add", uid="u1", user_info="first", group_id=group, image=photos["collins"])
    again = call("/user/add", uid="u1", user_info="first", group_id=group, image=photos["collins"])
    assert code(again) == 216616
    # The same photo for another user is fine.
    assert code(call("/user/add", uid="u2", user_info="x", group_id=group, image=photos["collins"])) is None
    # replace swaps u1's faces for Hopper's and updates user_info.
    replaced = call(
        "/user/add",
        uid="u1",
        user_info="now hopper",
        group_id=group,
        image=photos["hopper"],
        action_type="replace",
    )
    assert code(replaced) is None
    hit = call(IDENTIFY, group_id=group, image=photos["hopper"])["result"][0]
    assert (hit["uid"], hit["user_info"]) == ("u1", "now hopper")
    assert len(hit["scores"]) == 1


def test_add_to_several_groups_and_get(call: Call, group: str, photos: dict[str, str]) -> None:
    groups = f"{group}_a,{group}_b"
    call("/user/add", uid="multi", user_info="info", group_id=groups, image=photos["collins"])
    body = call("/user/get", uid="multi")
    assert body["result_num"] == 2
    assert body["result"] == [
        {"uid": "multi", "user_info": "info", "group_id": f"{group}_a"},
        {"uid": "multi", "user_info": "info", "group_id": f"{group}_b"},
    ]
    assert call("/user/get", uid="multi", group_id=f"{group}_b")["result_num"] == 1
    assert code(call("/user/get", uid="nobody_here")) == 216611


def test_update(call: Call, group: str, photos: dict[str, str]) -> None:
    assert code(call("/user/update", uid="absent", images=photos["collins"], group_id=group)) == 216611
    created = call(
        "/user/update",
        uid="absent",
        user_info="made",
        images=photos["collins"],
        group_id=group,
        action_type="replace",
    )
    assert code(created) is None
    call("/user/update", uid="absent", images=f"{photos['hopper']},{photos['collins_small']}", group_id=group)
    hit = call(IDENTIFY, group_id=group, image=photos["hopper"])["result"][0]
    assert hit["uid"] == "absent" and hit["user_info"] == "made" and len(hit["scores"]) == 2
    call("/user/update", uid="absent", user_info="renamed", images=photos["hopper"])
    assert call("/user/get", uid="absent")["result"][0]["user_info"] == "renamed"


def test_delete(call: Call, group: str, photos: dict[str, str]) -> None:
    both = f"{group},{group}_x"
    call("/user/add", uid="gone", user_info="x", group_id=both, image=photos["collins"])
    call("/user/add", uid="stays", user_info="y", group_id=group, image=photos["hopper"])
    assert code(call("/user/delete", uid="gone", group_id=f"{group}_x")) is None
    assert [r["group_id"] for r in call("/user/get", uid="gone")["result"]] == [group]
    assert code(call("/user/delete", uid="gone")) is None
    assert code(call("/user/get", uid="gone")) == 216611
    assert code(call("/user/delete", uid="gone")) == 216611
    # Deleted faces are gone from search at once.
    assert call(IDENTIFY, group_id=group, image=photos["collins"])["result"][0]["uid"] == "stays"


def test_group_listing_and_paging(call: Call, group: str, photos: dict[str, str]) -> None:
    for i in range(5):
        call("/user/add", uid=f"p{i}", user_info=f"user {i}", group_id=group, image=photos["collins"])
    everyone = call("/group/getusers", group_id=group)
    assert [u["uid"] for u in everyone["result"]] == [f"p{i}" for i in range(5)]
    assert everyone["result"][0] == {"uid": "p0", "user_info": "user 0"}
    page = call("/group/getusers", group_id=group, start="1", end="2")
    assert [u["uid"] for u in page["result"]] == ["p1", "p2"]
    assert call("/group/getusers", group_id=group, start="5")["result_num"] == 0
    assert call("/group/getusers", group_id=group, end="0")["result_num"] == 0
    assert code(call("/group/getusers", group_id=group, end="1001")) == 216100
    assert code(call("/group/getusers", group_id=group, start="-1")) == 216100
    groups = call("/group/getlist", end="1000")["result"]
    assert group in groups
    first_two = call("/group/getlist", start="0", end="2")
    assert first_two["result"] == groups[:2]


def test_adduser_and_deleteuser(call: Call, group: str, photos: dict[str, str]) -> None:
    a, b, c = group, f"{group}_b", f"{group}_c"
    call("/user/add", uid="mover", user_info="info", group_id=a, image=photos["collins"])
    assert code(call("/group/adduser", uid="mover", src_group_id=a, group_id=f"{b},{c}")) is None
    hit = call(IDENTIFY, group_id=c, image=photos["collins"])["result"][0]
    assert (hit["uid"], hit["user_info"]) == ("mover", "info")
    already = call("/group/adduser", uid="mover", src_group_id=a, group_id=b)
    assert (already["error_code"], already["error_msg"]) == (216100, "already add")
    assert code(call("/group/adduser", uid="nobody", src_group_id=a, group_id=b)) == 216611
    assert code(call("/group/deleteuser", uid="mover", group_id=f"{b},{c}")) is None
    assert code(call("/group/deleteuser", uid="mover", group_id=a)) == 216619
    assert code(call("/group/deleteuser", uid="mover", group_id=b)) == 216611
    assert [r["group_id"] for r in call("/user/get", uid="mover")["result"]] == [a]


def test_read_endpoints_accept_get(server: Server, group: str, photos: dict[str, str]) -> None:
    server.call(FACESET + "/user/add", uid="getter", user_info="x", group_id=group, image=photos["collins"])
    response = server.get(FACESET + "/user/get", {"uid": "getter"})
    assert response.json()["result"][0]["group_id"] == group
    response = server.get(FACESET + "/group/getusers", {"group_id": group})
    assert response.json()["result_num"] == 1
