"""Every error code the detect and match endpoints can give, from real malformed requests."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from renlian.api.app import create_app
from renlian.settings import Settings
from renlian.vision.analyzer import FaceAnalyzer
from tests.conftest import Server, b64
from tests.conftest import create_app as create_cli_app

DETECT = "/rest/2.0/face/v2/detect"
MATCH = "/rest/2.0/face/v2/match"


def error_of(server: Server, path: str, **fields: str) -> int:
    body = server.call(path, **fields)
    assert set(body) >= {"error_code", "error_msg", "log_id"}, body
    assert isinstance(body["error_msg"], str) and isinstance(body["log_id"], int)
    code: int = body["error_code"]
    return code


def gif() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(buffer, format="GIF")
    return base64.b64encode(buffer.getvalue()).decode()


def test_missing_required_parameter_is_216101(server: Server, astronaut: np.ndarray) -> None:
    assert error_of(server, DETECT) == 216101
    assert error_of(server, DETECT, max_face_num="2") == 216101
    assert error_of(server, MATCH) == 216101


def test_invalid_parameter_values_are_216100(server: Server, astronaut: np.ndarray) -> None:
    image = b64(astronaut)
    for bad in ("0", "-1", "two", "51"):
        assert error_of(server, DETECT, image=image, max_face_num=bad) == 216100
    assert error_of(server, DETECT, image=image, face_fields="landmark,tattoos") == 216100
    pair = f"{image},{image}"
    assert error_of(server, MATCH, images=pair, ext_fields="everything") == 216100
    assert error_of(server, MATCH, images=pair, image_liveness="yes,no") == 216100
    assert (
        error_of(server, MATCH, images=pair, image_liveness="faceliveness,faceliveness,faceliveness")
        == 216100
    )


def test_image_errors(server: Server, astronaut: np.ndarray) -> None:
    assert error_of(server, DETECT, image="%%%not-base64%%%") == 216200
    assert error_of(server, DETECT, image=gif()) == 216201
    assert error_of(server, MATCH, images=f"{b64(astronaut)},{gif()}") == 216201
    assert error_of(server, MATCH, images=f"{b64(astronaut)},") == 216200


def test_encoded_size_limits_are_216202(server: Server) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (1100, 1100, 3), dtype=np.uint8)
    big = b64(noise, ".png")  # about 4.8 MB of base64: over detect's 2 MB, under match's 20 MB
    assert len(big) > 2 * 1024 * 1024
    assert error_of(server, DETECT, image=big) == 216202
    assert error_of(server, MATCH, images=",".join([big] * 5)) == 216202


def test_match_needs_two_images_and_faces(server: Server, astronaut: np.ndarray) -> None:
    assert error_of(server, MATCH, images=b64(astronaut)) == 216614
    blank = b64(np.full((200, 200, 3), 127, np.uint8))
    body = server.call(MATCH, images=f"{b64(astronaut)},{blank}")
    assert body["error_code"] == 216402 and "image 1" in str(body["error_detail"])


def test_match_image_count_is_bounded(server: Server) -> None:
    tiny = b64(np.full((32, 32, 3), 127, np.uint8))
    assert error_of(server, MATCH, images=",".join([tiny] * 11)) == 216103


def test_unknown_rest_path_is_216102(server: Server) -> None:
    assert error_of(server, "/rest/2.0/face/v2/nonexistent") == 216102
    response = server.get("/rest/2.0/face/v9/detect")
    assert response.json()["error_code"] == 216102


def test_log_ids_are_unique(server: Server) -> None:
    ids = {server.call(DETECT)["log_id"] for _ in range(20)}
    assert len(ids) == 20


def test_unexpected_failure_is_216500_with_the_traceback_only_in_the_log(
    analyzer: FaceAnalyzer,
    astronaut: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated model crash")

    monkeypatch.setattr(analyzer, "detect", broken)
    credentials = create_cli_app(tmp_path)
    app = create_app(Settings(data_dir=tmp_path), lambda: analyzer)
    with TestClient(app, raise_server_exceptions=False) as client:
        token = client.get(
            "/oauth/2.0/token",
            params={
                "grant_type": "client_credentials",
                "client_id": credentials["api_key"],
                "client_secret": credentials["secret_key"],
            },
        ).json()["access_token"]
        response = client.post(DETECT, params={"access_token": token}, data={"image": b64(astronaut)})
    body = response.json()
    assert body["error_code"] == 216500 and body["error_msg"] == "unknown error"
    assert "simulated model crash" not in response.text
    assert any("simulated model crash" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    assert str(body["log_id"]) in caplog.text
