"""Baidu's official Python SDK (baidu-aip), unchanged, against a live renlian server, in both of its
authentication modes: access tokens (the app's scope has brain_all_scope) and bce-auth-v1 signatures."""

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
from aip import AipFace

from renlian.sdk import point_sdk
from tests.conftest import Server, create_app

SDK_1_6_9 = Path(sys.prefix) / "baidu-aip-1.6.9.0"


def jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


@pytest.fixture(scope="module", params=["token", "signed"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def credentials(server: Server, mode: str) -> dict[str, str]:
    return create_app(server.data_dir, f"sdk_{mode}", *(["--signed-only"] if mode == "signed" else []))


@pytest.fixture
def client(server: Server, credentials: dict[str, str]) -> Any:
    return point_sdk(
        AipFace(credentials["app_id"], credentials["api_key"], credentials["secret_key"]), server.base_url
    )


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "error_code" not in result, result
    assert isinstance(result["log_id"], int)
    return result


def test_the_sdk_picks_the_mode_the_scope_asks_for(client: Any, mode: str) -> None:
    ok(client.getGroupList())
    assert client._isCloudUser is (mode == "signed")


def test_detect_and_match(client: Any, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    detected = ok(client.detect(jpeg(astronaut), {"max_face_num": 2, "face_fields": "landmark"}))
    assert detected["result_num"] == 1 and len(detected["result"][0]["landmark72"]) == 72
    matched = ok(client.match([jpeg(astronaut), jpeg(astronaut[:, ::-1].copy()), jpeg(hopper)]))
    scores = {(r["index_i"], r["index_j"]): r["score"] for r in matched["result"]}
    assert scores[(0, 1)] > 90 and scores[(0, 2)] < 80


def test_every_face_library_method(client: Any, mode: str, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    group, other = f"sdk_{mode}", f"sdk_{mode}_copy"
    collins, grace = jpeg(astronaut), jpeg(hopper)
    ok(client.addUser("collins", "Eileen Collins", group, collins))
    ok(client.addUser("hopper", "Grace Hopper", group, grace))
    assert client.addUser("collins", "again", group, collins)["error_code"] == 216616

    found = ok(client.identifyUser(group, jpeg(astronaut[:, ::-1].copy()), {"user_top_num": 2}))
    assert [r["uid"] for r in found["result"]] == ["collins", "hopper"]
    assert found["result"][0]["user_info"] == "Eileen Collins" and found["result"][0]["scores"][0] > 80

    assert ok(client.verifyUser("collins", group, collins))["result"][0] > 95
    assert ok(client.verifyUser("hopper", group, collins))["result"][0] < 80

    ok(client.updateUser("hopper", "Rear Admiral Hopper", group, grace))
    user = ok(client.getUser("hopper"))
    assert user["result"] == [{"uid": "hopper", "user_info": "Rear Admiral Hopper", "group_id": group}]

    assert group in ok(client.getGroupList({"start": 0, "end": 1000}))["result"]
    users = ok(client.getGroupUsers(group, {"start": 0, "end": 10}))
    assert [u["uid"] for u in users["result"]] == ["collins", "hopper"]

    ok(client.addGroupUser(group, other, "collins"))
    assert [r["group_id"] for r in ok(client.getUser("collins"))["result"]] == [group, other]
    ok(client.deleteGroupUser(other, "collins"))
    assert client.deleteGroupUser(group, "collins")["error_code"] == 216619

    ok(client.deleteUser("hopper"))
    assert client.getUser("hopper")["error_code"] == 216611
    assert client.deleteUser("collins", {"group_id": group})["log_id"]


@pytest.fixture
def token_client(server: Server) -> Any:
    app = create_app(server.data_dir, "sdk_tokens")
    return point_sdk(AipFace(app["app_id"], app["api_key"], app["secret_key"]), server.base_url)


def test_a_refused_token_is_refreshed_once_by_the_sdk(token_client: Any) -> None:
    client = token_client
    ok(client.getGroupList())
    prefix, mac, rest = client._authObj["access_token"].split(".", 2)
    # What the SDK holds no longer checks out (as after a revocation): its MAC is wrong.
    refused = f"{prefix}.{mac[::-1]}.{rest}"
    client._authObj["access_token"] = refused
    # The server answers 110; the SDK fetches a new token and retries, and the caller never notices.
    ok(client.getGroupList())
    assert client._authObj["access_token"] != refused


def test_an_expired_token_is_replaced_before_use(token_client: Any) -> None:
    client = token_client
    ok(client.getGroupList())
    first = client._authObj["access_token"]
    # What the SDK does when its clock passes expires_in: it asks for a new token first.
    client._authObj["time"] = 0
    ok(client.getGroupList())
    assert client._authObj["access_token"] != first


def test_sdk_1_6_9_detects_through_v2(
    server: Server, credentials: dict[str, str], astronaut: np.ndarray, tmp_path: Path
) -> None:
    assert (SDK_1_6_9 / "aip").is_dir(), "the test command installs baidu-aip 1.6.9.0 beside the venv"
    photo = tmp_path / "face.jpg"
    photo.write_bytes(jpeg(astronaut))
    script = (
        "import json, sys\n"
        "from aip import AipFace\n"
        "from renlian.sdk import point_sdk\n"
        "c = point_sdk(AipFace(*sys.argv[1:4]), sys.argv[4])\n"
        "assert c.getVersion() == '1_6_9' and c._AipFace__detectUrl.endswith('/face/v2/detect')\n"
        "print(json.dumps(c.detect(open(sys.argv[5], 'rb').read())))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SDK_1_6_9), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            credentials["app_id"],
            credentials["api_key"],
            credentials["secret_key"],
            server.base_url,
            str(photo),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=True,
    )
    assert ok(json.loads(result.stdout))["result_num"] == 1
