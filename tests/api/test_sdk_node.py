"""Baidu's official Node SDK (npm `baidu-aip-sdk`), unchanged, against a live renlian server, in both of
its authentication modes, through the committed driver `node/drive.js`.

Two releases, both installed by the test command into `.venv/node`:

- 2.1.0, the last one that calls the Face v2 paths, drives every v2 method end to end;
- 4.16.16, the current one, calls v3 paths, which renlian does not serve yet (216102): it must get
  past authentication in both modes.

Every version of the Node SDK writes its token-mode query string as
`aipSdk=node&access_token=<token>?aipSdk=node` (the `?aipSdk=node` it appends to every URL lands
after the token), so the tests also check that this shape admits issued tokens and nothing else.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.conftest import Server, b64, create_app

NODE_MODULES = Path(sys.prefix) / "node" / "node_modules"
SDK_V2 = NODE_MODULES / "baidu-aip-sdk-2.1.0"
SDK_CURRENT = NODE_MODULES / "baidu-aip-sdk"
DRIVER = Path(__file__).parent / "node" / "drive.js"
AUTH_ERRORS = {100, 110, 111}
GROUP_LIST_V2 = "/rest/2.0/face/v2/faceset/group/getlist"


@pytest.fixture(scope="module", params=["token", "signed"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def credentials(server: Server, mode: str) -> dict[str, str]:
    return create_app(server.data_dir, f"node_{mode}", *(["--signed-only"] if mode == "signed" else []))


def drive(sdk: Path, server: Server, app: dict[str, str], calls: list[dict[str, Any]]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "the test command installs nodejs when node is missing"
    assert (sdk / "package.json").is_file(), f"the test command installs the Node SDK into {NODE_MODULES}"
    completed = subprocess.run(
        [node, str(DRIVER), str(sdk), server.base_url, app["app_id"], app["api_key"], app["secret_key"]],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    driven: dict[str, Any] = json.loads(completed.stdout)
    return driven


def call(method: str, *args: Any) -> dict[str, Any]:
    return {"method": method, "args": list(args)}


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert "error_code" not in result and "sdk_error" not in result, result
    assert isinstance(result["log_id"], int)
    return result


def check_wire_shape(requests: list[dict[str, Any]], mode: str, api_key: str) -> None:
    """What the SDK sent: a token request first, then every call in the mode the scope chose."""
    assert requests[0]["method"] == "POST" and requests[0]["target"] == "/oauth/2.0/token"
    calls = requests[1:]
    assert calls
    for sent in calls:
        path, _, query = sent["target"].partition("?")
        assert path.startswith("/rest/2.0/face/")
        assert sent["host"] == "aip.baidubce.com"
        if mode == "token":
            assert re.fullmatch(r"aipSdk=node&access_token=24\.[0-9a-f]{32}\.[0-9.]+\?aipSdk=node", query), (
                query
            )
            assert sent["authorization"] is None
        else:
            assert query == "aipSdk=node"
            assert sent["authorization"].startswith(f"bce-auth-v1/{api_key}/")
            assert "/content-type;host;x-bce-date/" in sent["authorization"]


def test_sdk_2_1_0_calls_every_v2_method(
    server: Server, credentials: dict[str, str], mode: str, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    group, other = f"node_{mode}", f"node_{mode}_copy"
    collins, grace, flipped = b64(astronaut), b64(hopper), b64(astronaut[:, ::-1].copy())
    calls = [
        call("detect", collins, {"max_face_num": "2", "face_fields": "landmark"}),
        call("match", [collins, flipped, grace]),
        call("addUser", "collins", "Eileen Collins", group, collins),
        call("addUser", "hopper", "Grace Hopper", group, grace),
        call("addUser", "collins", "again", group, collins),
        call("identifyUser", group, flipped, {"user_top_num": "2"}),
        call("verifyUser", "collins", group, collins),
        call("verifyUser", "hopper", group, collins),
        call("updateUser", "hopper", "Rear Admiral Hopper", group, grace),
        call("getUser", "hopper"),
        call("getGrouplist", {"start": "0", "end": "1000"}),
        call("getGroupUsers", group, {"start": "0", "end": "10"}),
        call("addGroupUsers", group, other, "collins"),
        call("getUser", "collins"),
        call("deleteGroupUsers", other, "collins"),
        call("deleteGroupUsers", group, "collins"),
        call("deleteUser", "hopper"),
        call("getUser", "hopper"),
    ]
    driven = drive(SDK_V2, server, credentials, calls)
    assert driven["version"] == "2.1.0"
    check_wire_shape(driven["requests"], mode, credentials["api_key"])
    assert all(r["target"].startswith(("/oauth/", "/rest/2.0/face/v2/")) for r in driven["requests"])
    (
        detected,
        matched,
        added_collins,
        added_hopper,
        added_again,
        found,
        verified,
        not_verified,
        updated,
        hopper_user,
        groups,
        users,
        copied,
        collins_user,
        removed_copy,
        removed_last,
        deleted,
        gone,
    ) = driven["results"]

    assert ok(detected)["result_num"] == 1 and len(detected["result"][0]["landmark72"]) == 72
    scores = {(r["index_i"], r["index_j"]): r["score"] for r in ok(matched)["result"]}
    assert scores[(0, 1)] > 90 and scores[(0, 2)] < 80

    ok(added_collins)
    ok(added_hopper)
    assert added_again["error_code"] == 216616
    assert [r["uid"] for r in ok(found)["result"]] == ["collins", "hopper"]
    assert found["result"][0]["user_info"] == "Eileen Collins" and found["result"][0]["scores"][0] > 80
    assert ok(verified)["result"][0] > 95 and ok(not_verified)["result"][0] < 80

    ok(updated)
    assert ok(hopper_user)["result"] == [
        {"uid": "hopper", "user_info": "Rear Admiral Hopper", "group_id": group}
    ]
    assert group in ok(groups)["result"]
    assert [u["uid"] for u in ok(users)["result"]] == ["collins", "hopper"]
    ok(copied)
    assert [r["group_id"] for r in ok(collins_user)["result"]] == [group, other]
    ok(removed_copy)
    assert removed_last["error_code"] == 216619
    ok(deleted)
    assert gone["error_code"] == 216611


def test_sdk_4_16_16_gets_past_authentication(
    server: Server, credentials: dict[str, str], mode: str, astronaut: np.ndarray
) -> None:
    face = {"image": b64(astronaut), "image_type": "BASE64"}
    # A form body (getGrouplist, detect) and a JSON array labelled as a form (match).
    calls = [call("getGrouplist"), call("detect", face["image"], "BASE64"), call("match", [face, face])]
    driven = drive(SDK_CURRENT, server, credentials, calls)
    assert driven["version"] == "4.16.16"
    check_wire_shape(driven["requests"], mode, credentials["api_key"])
    # Its paths are v3 (216102 until renlian serves v3); what matters here is that it was admitted.
    for result in driven["results"]:
        assert "sdk_error" not in result and result.get("error_code") not in AUTH_ERRORS, result


def rotate_secret(data_dir: Path, app_id: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "renlian.cli", "apps", "rotate-secret", app_id, "--data-dir", str(data_dir)],
        capture_output=True,
        check=True,
        timeout=60,
    )


def test_the_node_query_shape_admits_only_issued_tokens(server: Server) -> None:
    app = create_app(server.data_dir, "node_shape")
    token = server.token_for(app)

    def code(access_token_value: str) -> int | None:
        # The URL as the SDK writes it, sent byte for byte: httpx leaves a "?" in the query alone.
        url = f"{server.base_url}{GROUP_LIST_V2}?aipSdk=node&access_token={access_token_value}"
        body: dict[str, Any] = httpx.post(url, timeout=60).json()
        error: int | None = body.get("error_code")
        return error

    assert code(f"{token}?aipSdk=node") is None
    assert code(f"{token}?aipSdk=node&aipVersion=2.1.0") is None
    last = token[-1]
    other = "0" if last != "0" else "1"
    refused = [
        f"{token[:-1]}{other}?aipSdk=node",  # one character different
        f"{token[:-1]}?aipSdk=node",  # a prefix of an issued token
        f"{token}0?aipSdk=node",  # an issued token with more after it
        f"{token}?",  # no query string after the "?"
        f"{token}?aipSdk",  # not name=value
        f"{token}?aipSdk=node?aipSdk=node",
        "?aipSdk=node",
    ]
    for value in refused:
        assert code(value) == 110, value

    rotate_secret(server.data_dir, app["app_id"])
    assert code(f"{token}?aipSdk=node") == 110
