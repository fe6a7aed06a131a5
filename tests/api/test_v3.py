"""v3 by hand: every body encoding real clients use, every image_type, every error code renlian raises
(each from a real bad request), quality and liveness controls, and v2 and v3 sharing one library."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from PIL import Image

from tests.conftest import Server, b64, create_app, read, start_server
from training.liveness_replay.synth import replay

V3 = "/rest/2.0/face/v3"
V2 = "/rest/2.0/face/v2"


def call(
    server: Server, path: str, body: Any, *, encoding: str = "json", token: str | None = None
) -> dict[str, Any]:
    """POST a v3 body the way one of the official SDKs sends it."""
    url = server.base_url + (path if path.startswith("/rest") else f"{V3}/{path}")
    params = {"access_token": token or server.token}
    if encoding == "json":  # Python and PHP SDKs
        response = httpx.post(url, params=params, json=body, timeout=60)
    elif encoding == "json-as-form":  # Java SDK, and the Node SDK's match
        headers = {"content-type": "application/x-www-form-urlencoded"}
        response = httpx.post(url, params=params, content=json.dumps(body), headers=headers, timeout=60)
    else:  # Node SDK: a real form
        response = httpx.post(url, params=params, data=body, timeout=60)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    assert set(answer) >= {"error_code", "error_msg", "log_id", "timestamp", "cached", "result"}, answer
    return answer


def code(answer: dict[str, Any]) -> int:
    if answer["error_code"] != 0:
        assert answer["result"] is None
    return int(answer["error_code"])


@pytest.fixture(scope="module")
def photos(astronaut: np.ndarray, hopper: np.ndarray) -> dict[str, str]:
    eyes = astronaut.copy()
    eyes[95:130, 185:265] = 0  # a black bar over both eyes
    dark = (astronaut * 0.08).astype(np.uint8)
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, format="GIF")
    return {
        "a": b64(astronaut),
        "h": b64(hopper),
        "eyes": b64(eyes),
        "dark": b64(dark),
        "half": b64(astronaut[:, :222]),  # the face cut by the image's edge
        "blurred": b64(cv2.GaussianBlur(astronaut, (0, 0), 3)),
        # A portrait shown on a phone and filmed (synthetic): the liveness model scores it about 0.
        "replay": b64(replay(read("biden.jpg"), np.random.default_rng(0), "replay_phone")),
        "empty": b64(np.full((200, 200, 3), 200, np.uint8)),
        "gif": base64.b64encode(buffer.getvalue()).decode(),
    }


def test_every_body_encoding(server: Server, photos: dict[str, str]) -> None:
    detect = {"image": photos["a"], "image_type": "BASE64", "max_face_num": "2", "face_field": "age"}
    for encoding in ("json", "json-as-form", "form"):
        result = call(server, "detect", detect, encoding=encoding)["result"]
        assert result["face_num"] == 1 and "age" in result["face_list"][0], encoding
    assert call(server, "detect", {**detect, "max_face_num": 2})["error_code"] == 0  # a JSON number
    pair = [{"image": photos["a"], "image_type": "BASE64"}, {"image": photos["a"], "image_type": "BASE64"}]
    for encoding in ("json", "json-as-form"):
        assert call(server, "match", pair, encoding=encoding)["result"]["score"] > 90
    call(server, "faceset/group/add", {"group_id": "enc"})
    add = {"image": photos["a"], "image_type": "BASE64", "group_id": "enc", "user_id": "u1"}
    assert code(call(server, "faceset/user/add", add, encoding="form")) == 0
    for group_list in ("enc", ["enc"], "enc,enc"):
        found = call(
            server, "search", {"image": photos["a"], "image_type": "BASE64", "group_id_list": group_list}
        )
        assert found["result"]["user_list"][0]["user_id"] == "u1", group_list
    listing = call(server, "faceset/group/getlist", {"start": "0", "length": 1000})["result"]["group_id_list"]
    assert "enc" in listing


def test_every_image_type(tmp_path: Path, photos: dict[str, str], astronaut: np.ndarray) -> None:
    allowed_dir = tmp_path / "www"
    allowed_dir.mkdir()
    (allowed_dir / "a.jpg").write_bytes(cv2.imencode(".jpg", astronaut)[1].tobytes())
    hits: list[str] = []

    class Photos(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            if self.path == "/allowed/a.jpg":
                data = (allowed_dir / "a.jpg").read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            elif self.path == "/allowed/away":
                self.send_response(302)
                self.send_header("Location", f"http://{self.headers['Host']}/private/a.jpg")
                self.end_headers()
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    web = ThreadingHTTPServer(("127.0.0.1", 0), Photos)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{web.server_port}"
    server = start_server(tmp_path, {"RENLIAN_IMAGE_URL_ALLOW": f"{base}/allowed/"})
    try:
        by_url = call(server, "detect", {"image": f"{base}/allowed/a.jpg", "image_type": "URL"})
        assert by_url["result"]["face_num"] == 1 and hits == ["/allowed/a.jpg"]
        refused = call(server, "detect", {"image": f"{base}/private/a.jpg", "image_type": "URL"})
        assert code(refused) == 222204 and "error_detail" in refused
        redirected = call(server, "detect", {"image": f"{base}/allowed/away", "image_type": "URL"})
        assert code(redirected) == 222204
        assert "/private/a.jpg" not in hits  # neither the disallowed URL nor the redirect's target
        token = by_url["result"]["face_list"][0]["face_token"]
        by_token = call(server, "detect", {"image": token, "image_type": "FACE_TOKEN"})
        assert by_token["result"]["face_list"][0]["face_token"] == token
        by_base64 = call(server, "detect", {"image": photos["a"], "image_type": "BASE64"})
        # The same image and face give the same token, whichever way the image came.
        assert by_base64["result"]["face_list"][0]["face_token"] == token
    finally:
        server.stop()
        web.shutdown()


def same_place(found: dict[str, Any], first: dict[str, Any]) -> bool:
    """The same box within a pixel, and the same rotation."""
    box = ("left", "top", "width", "height")
    return all(abs(found[k] - first[k]) <= 1 for k in box) and found["rotation"] == first["rotation"]


def test_a_face_token_image_reports_where_the_face_was_in_its_photo(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    # The face far from the centre of a larger photo: its box there is nothing like its crop's.
    canvas = np.full((800, 1100, 3), 90, np.uint8)
    canvas[230:742, 560:1072] = astronaut
    photo = b64(canvas)
    server = start_server(tmp_path)
    try:
        first = call(server, "detect", {"image": photo, "image_type": "BASE64"})["result"]["face_list"][0]
        token, where = first["face_token"], first["location"]
        assert where["left"] > 600 and where["top"] > 250, where
        by_token = {"image": token, "image_type": "FACE_TOKEN"}
        for _ in range(2):  # the second time from what the first call by token left in the cache
            again = call(server, "detect", by_token)["result"]["face_list"][0]
            assert again["face_token"] == token and same_place(again["location"], where), again
        enrolled = call(server, "faceset/user/add", {**by_token, "group_id": "places", "user_id": "u"})
        assert same_place(enrolled["result"]["location"], where), enrolled
        multi = call(server, "multi-search", {**by_token, "group_id_list": "places", "max_face_num": 1})
        assert same_place(multi["result"]["face_list"][0]["location"], where), multi
        # An enrolment of the photo itself keeps the location with the crop in the store.
        call(
            server,
            "faceset/user/add",
            {"image": photo, "image_type": "BASE64", "group_id": "kept", "user_id": "k"},
        )
    finally:
        server.stop()
    # After a restart the token's crop comes from the store, and its location with it.
    restarted = start_server(tmp_path, app=server.app)
    try:
        again = call(restarted, "detect", {"image": token, "image_type": "FACE_TOKEN"})["result"]
        assert same_place(again["face_list"][0]["location"], where), again
    finally:
        restarted.stop()


def test_every_error_code(server: Server, photos: dict[str, str]) -> None:
    a = {"image": photos["a"], "image_type": "BASE64"}
    call(server, "faceset/group/add", {"group_id": "errs"})
    assert code(call(server, "faceset/user/add", {**a, "group_id": "errs", "user_id": "e1"})) == 0
    cases: list[tuple[str, Any, int]] = [
        ("detect", {"image_type": "BASE64"}, 222001),
        ("faceset/group/getlist", {"start": "x"}, 222002),
        ("faceset/group/getlist", {"length": "1001"}, 222003),
        ("search", {**a, "group_id_list": "bad group"}, 222005),
        ("faceset/group/add", {"group_id": "a-b"}, 222006),
        ("faceset/user/add", {**a, "group_id": "errs", "user_id": "e2", "user_info": "x" * 300}, 222010),
        ("detect", {"image": "%%%", "image_type": "BASE64"}, 222013),
        ("detect", {"image": photos["a"], "image_type": "PNG"}, 222015),
        ("detect", {**a, "max_face_num": "121"}, 222016),
        ("detect", {**a, "face_field": "tattoos"}, 222017),
        ("faceset/user/get", {"group_id": "errs", "user_id": "e\n"}, 222018),
        ("search", {**a, "group_id_list": "errs", "quality_control": "MAX"}, 222019),
        ("search", {**a, "group_id_list": "errs", "liveness_control": "yes"}, 222020),
        ("search", {**a, "group_id_list": "errs", "max_user_num": "51"}, 222021),
        ("detect", {**a, "face_type": "PASSPORT"}, 222024),
        ("faceset/face/delete", {"group_id": "errs", "user_id": "e1", "face_token": "xyz"}, 222025),
        ("detect", {"image": photos["empty"], "image_type": "BASE64", "max_face_num": 1}, 0),
        ("search", {"image": photos["empty"], "image_type": "BASE64", "group_id_list": "errs"}, 222202),
        ("detect", {"image": photos["gif"], "image_type": "BASE64"}, 222203),
        (
            "search",
            {"image": photos["h"], "image_type": "BASE64", "group_id_list": "errs", "match_threshold": 80},
            222207,
        ),
        ("match", [a], 222208),
        ("detect", {"image": "0" * 32, "image_type": "FACE_TOKEN"}, 222209),
        ("faceset/group/getusers", {"group_id": "nowhere"}, 223100),
        ("faceset/group/add", {"group_id": "errs"}, 223101),
        ("faceset/user/copy", {"user_id": "e1", "src_group_id": "errs", "dst_group_id": "errs"}, 223102),
        ("faceset/user/get", {"group_id": "errs", "user_id": "nobody"}, 223103),
        ("search", {**a, "group_id_list": ",".join(f"g{i}" for i in range(11))}, 223104),
        ("faceset/user/add", {**a, "group_id": "errs", "user_id": "e3"}, 223105),
        ("faceset/face/delete", {"group_id": "errs", "user_id": "e1", "face_token": "f" * 32}, 223106),
        ("faceset/user/copy", {"user_id": "e1", "src_group_id": "errs", "dst_group_id": "nowhere"}, 223111),
        ("faceset/user/add", {**a, "group_id": "errs", "user_id": "e1", "action_type": "MERGE"}, 216100),
        ("search", {**a, "group_id_list": "errs", "match_threshold": "101"}, 216100),
        ("search", {**a, "group_id_list": "errs", "spoofing_control": "LOW"}, 216100),
        ("person/verify", {**a}, 3),
    ]
    for path, body, expected in cases:
        answer = call(server, path, body)
        assert code(answer) == expected, (path, expected, answer)
    assert call(server, "faceset/face/getlist", {"group_id": "errs", "user_id": "e1"})["error_code"] == 0
    missing = call(server, "detect", {"image_type": "BASE64"})
    assert missing["error_msg"] == "param[image] is null"


def test_a_closed_capability_is_6(server: Server, photos: dict[str, str]) -> None:
    app = create_app(server.data_dir, "v3_closed")
    token = server.token_for(app)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "renlian.cli",
            "apps",
            "set",
            app["app_id"],
            "--close",
            "detect",
            "--data-dir",
            str(server.data_dir),
        ],
        check=True,
        capture_output=True,
    )
    answer = call(server, "detect", {"image": photos["a"], "image_type": "BASE64"}, token=token)
    assert code(answer) == 6 and answer["error_msg"] == "no permission to access data"


def test_quality_and_liveness_controls(server: Server, photos: dict[str, str]) -> None:
    call(server, "faceset/group/add", {"group_id": "ctl"})

    def add(image: str, **controls: str) -> int:
        body = {"image": photos[image], "image_type": "BASE64", "group_id": "ctl", "user_id": "c", **controls}
        return code(call(server, "faceset/user/add", body))

    assert add("eyes", quality_control="HIGH") in (223121, 223122)
    assert add("dark", quality_control="NORMAL") == 223115
    # Cut by the image's edge: incomplete, or (checked first) the cut-off parts read as covered.
    assert add("half", quality_control="HIGH") in (223116, *range(223121, 223128))
    assert add("blurred", quality_control="NORMAL") in (223114, *range(223121, 223128))
    assert add("replay", liveness_control="LOW") == 223120
    assert add("a", quality_control="HIGH", liveness_control="NORMAL") == 0
    # Detect leaves out the faces that fail, rather than failing.
    body = {
        "image": photos["eyes"],
        "image_type": "BASE64",
        "liveness_control": "NONE",
        "quality_control": "HIGH",
    }
    assert (
        call(server, "detect", {"image": photos["eyes"], "image_type": "BASE64"})["result"]["face_num"] == 1
    )
    assert call(server, "detect", body)["result"]["face_num"] == 0
    live = {"image_type": "BASE64", "liveness_control": "LOW"}
    assert call(server, "detect", {**live, "image": photos["replay"]})["result"]["face_num"] == 0
    assert call(server, "detect", {**live, "image": photos["a"]})["result"]["face_num"] == 1
    multi = call(server, "multi-search", {**body, "group_id_list": "ctl", "max_face_num": 2})
    assert multi["result"]["face_num"] == 0


def test_v2_and_v3_share_one_library(server: Server, photos: dict[str, str]) -> None:
    # Enrolled through v2, found through v3.
    server.call(
        f"{V2}/faceset/user/add", uid="both2", user_info="from v2", group_id="shared", images=photos["a"]
    )
    found = call(server, "search", {"image": photos["a"], "image_type": "BASE64", "group_id_list": "shared"})
    assert found["result"]["user_list"][0] == {
        "group_id": "shared",
        "user_id": "both2",
        "user_info": "from v2",
        "score": found["result"]["user_list"][0]["score"],
    }
    # Enrolled through v3, identified and verified through v2.
    body = {
        "image": photos["h"],
        "image_type": "BASE64",
        "group_id": "shared",
        "user_id": "both3",
        "user_info": "v3",
    }
    assert code(call(server, "faceset/user/add", body)) == 0
    identified = server.call(f"{V2}/identify", group_id="shared", images=photos["h"])
    assert identified["result"][0]["uid"] == "both3"
    assert server.call(f"{V2}/verify", uid="both3", group_id="shared", images=photos["h"])["result"][0] > 80
    # A v3 group/delete is seen by v2.
    assert code(call(server, "faceset/group/delete", {"group_id": "shared"})) == 0
    assert server.call(f"{V2}/faceset/group/getusers", group_id="shared")["error_code"] == 216618
    assert server.call(f"{V2}/faceset/user/get", uid="both3")["error_code"] == 216611
    # The same 80 means the same thing in both: one calibration.
    pair = [{"image": photos["a"], "image_type": "BASE64"}, {"image": photos["h"], "image_type": "BASE64"}]
    v3_score = call(server, "match", pair)["result"]["score"]
    v2_score = server.call(f"{V2}/match", images=f"{photos['a']},{photos['h']}")["result"][0]["score"]
    assert abs(v3_score - v2_score) < 1e-6
