"""Baidu's current official Python SDK, baidu-aip 4.16.13 (every method calls v3), unchanged against a
live renlian server in both authentication modes; and v2 and v3 clients sharing one library."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.conftest import Server, create_app

SDK_4_16_13 = Path(sys.prefix) / "baidu-aip-4.16.13"
SESSION = Path(__file__).parent / "sdk" / "aip_v3_session.py"


def ok(answer: dict[str, Any]) -> dict[str, Any]:
    assert answer["error_code"] == 0 and answer["error_msg"] == "SUCCESS", answer
    assert isinstance(answer["log_id"], int) and answer["cached"] == 0 and "timestamp" in answer
    return answer


@pytest.fixture(scope="module", params=["token", "signed"])
def session(
    request: pytest.FixtureRequest,
    server: Server,
    astronaut: np.ndarray,
    hopper: np.ndarray,
    tmp_path_factory: Any,
) -> dict[str, Any]:
    assert (SDK_4_16_13 / "aip").is_dir(), "the test command installs baidu-aip 4.16.13 beside the venv"
    mode = str(request.param)
    app = create_app(server.data_dir, f"sdk3_{mode}", *(["--signed-only"] if mode == "signed" else []))
    folder = tmp_path_factory.mktemp(f"sdk3_{mode}")
    photos = []
    for name, image in (("a.jpg", astronaut), ("b.jpg", hopper)):
        (folder / name).write_bytes(cv2.imencode(".jpg", image)[1].tobytes())
        photos.append(str(folder / name))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SDK_4_16_13), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [
            sys.executable,
            str(SESSION),
            app["app_id"],
            app["api_key"],
            app["secret_key"],
            server.base_url,
            *photos,
            mode,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers: dict[str, Any] = json.loads(result.stdout)
    answers["mode"] = mode
    return answers


def test_it_is_the_current_sdk(session: dict[str, Any]) -> None:
    assert session["version"] == "4.15.13"  # what 4.16.13 reports of itself


def test_groups(session: dict[str, Any]) -> None:
    ok(session["groupAdd"])
    assert session["groupAdd"]["result"] is None
    assert session["groupAdd_again"]["error_code"] == 223101
    groups = ok(session["getGroupList"])["result"]["group_id_list"]
    assert {f"{session['mode']}_g1", f"{session['mode']}_g2"} <= set(groups)
    ok(session["groupDelete"])
    assert session["groupDelete_again"]["error_code"] == 223100


def test_detect(session: dict[str, Any]) -> None:
    result = ok(session["detect"])["result"]
    assert result["face_num"] == 1
    face = result["face_list"][0]
    assert len(face["face_token"]) == 32 and set(face["location"]) == {
        "left",
        "top",
        "width",
        "height",
        "rotation",
    }
    assert 0 < face["age"] < 100 and face["gender"]["type"] == "female"
    assert face["quality"]["completeness"] == 1 and "chin_contour" in face["quality"]["occlusion"]
    assert len(face["landmark"]) == 4 and len(face["landmark72"]) == 72


def test_enrolment_and_search(session: dict[str, Any]) -> None:
    added = ok(session["addUser"])["result"]
    assert added["face_token"] == ok(session["detect"])["result"]["face_list"][0]["face_token"]
    ok(session["addUser_b"])
    ok(session["updateUser"])
    assert ok(session["getUser"])["result"]["user_list"][0]["user_info"] == "Rear Admiral Hopper"
    assert [f["face_token"] for f in ok(session["faceGetlist"])["result"]["face_list"]] == [
        added["face_token"]
    ]
    assert ok(session["getGroupUsers"])["result"]["user_id_list"] == ["collins", "hopper"]
    users = ok(session["search"])["result"]["user_list"]
    assert [u["user_id"] for u in users] == ["collins", "hopper"] and users[0]["score"] > 90 > users[1][
        "score"
    ]
    assert users[0]["user_info"] == "Eileen Collins"
    assert [u["user_id"] for u in ok(session["search_list"])["result"]["user_list"]] == ["hopper"]
    assert ok(session["search_token"])["result"]["user_list"][0]["user_id"] == "collins"
    multi = ok(session["multiSearch"])["result"]
    assert multi["face_num"] == 1 and multi["face_list"][0]["user_list"][0]["user_id"] == "collins"


def test_match_and_faceverify(session: dict[str, Any]) -> None:
    assert ok(session["match"])["result"]["score"] > 90
    assert ok(session["match_other"])["result"]["score"] < 80
    verified = ok(session["faceverify"])["result"]
    assert 0 <= verified["face_liveness"] <= 1 and set(verified["thresholds"]) == {
        "frr_1e-4",
        "frr_1e-3",
        "frr_1e-2",
    }
    assert "livemapscore" in verified["face_list"][0]["liveness"] and "age" in verified["face_list"][0]


def test_copy_and_deletes(session: dict[str, Any]) -> None:
    ok(session["userCopy"])
    ok(session["faceDelete"])
    # Its only face gone, the user is gone from that group.
    assert session["getUser_after_faceDelete"]["error_code"] == 223103
    ok(session["deleteUser"])
    assert session["getUser_deleted"]["error_code"] == 223103


def test_unserved_methods_answer_a_v3_error(session: dict[str, Any]) -> None:
    answer = session["personVerify"]
    assert answer["error_code"] == 3 and answer["result"] is None
