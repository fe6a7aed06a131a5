"""Detect over real HTTP, in the form the Baidu SDK sends it."""

from __future__ import annotations

import numpy as np

from tests.conftest import Server, b64

DETECT_PATHS = ("/rest/2.0/face/v1/detect", "/rest/2.0/face/v2/detect")


def test_default_fields_on_both_paths(server: Server, astronaut: np.ndarray) -> None:
    for path in DETECT_PATHS:
        body = server.call(path, image=b64(astronaut))
        assert body["result_num"] == 1
        assert isinstance(body["log_id"], int) and 0 < body["log_id"] < 2**64
        face = body["result"][0]
        assert set(face) == {"location", "face_probability", "rotation_angle", "yaw", "pitch", "roll"}
        location = face["location"]
        assert set(location) == {"left", "top", "width", "height"}
        assert all(isinstance(v, int) and v >= 0 for v in location.values())
        assert 0 < face["face_probability"] <= 1
        assert isinstance(face["rotation_angle"], int)
        assert all(-90 <= face[k] <= 90 for k in ("yaw", "pitch"))


def test_landmarks_in_original_image_coordinates(server: Server, astronaut: np.ndarray) -> None:
    body = server.call(DETECT_PATHS[1], image=b64(astronaut), face_fields="landmark")
    face = body["result"][0]
    assert len(face["landmark"]) == 4 and len(face["landmark72"]) == 72
    location = face["location"]
    for point in face["landmark"] + face["landmark72"]:
        assert set(point) == {"x", "y"} and all(isinstance(v, int) for v in point.values())
        assert location["left"] - 30 <= point["x"] <= location["left"] + location["width"] + 30
    # The same photo in a bigger canvas: every coordinate moves by the padding.
    padded = np.pad(astronaut, ((100, 0), (60, 0), (0, 0)), constant_values=90)
    moved = server.call(DETECT_PATHS[1], image=b64(padded), face_fields="landmark")["result"][0]
    dx = [m["x"] - p["x"] for m, p in zip(moved["landmark72"], face["landmark72"], strict=True)]
    dy = [m["y"] - p["y"] for m, p in zip(moved["landmark72"], face["landmark72"], strict=True)]
    assert abs(np.median(dx) - 60) <= 2 and abs(np.median(dy) - 100) <= 2


def test_attribute_fields_have_the_spec_shape_on_both_paths(server: Server, astronaut: np.ndarray) -> None:
    fields = "age,beauty,expression,faceshape,gender,glasses,race,qualities"
    for path in DETECT_PATHS:
        face = server.call(path, image=b64(astronaut), face_fields=fields)["result"][0]
        assert isinstance(face["age"], float) and isinstance(face["beauty"], float)
        assert face["expression"] in (0, 1, 2) and 0 <= face["expression_probability"] <= 1
        assert face["gender"] == "female" and 0.5 <= face["gender_probability"] <= 1
        assert face["glasses"] in (0, 1, 2) and 0 <= face["glasses_probability"] <= 1
        assert face["race"] in ("yellow", "white", "black", "arabs") and 0 <= face["race_probability"] <= 1
        assert [shape["type"] for shape in face["faceshape"]] == [
            "square",
            "triangle",
            "oval",
            "heart",
            "round",
        ]
        qualities = face["qualities"]
        assert set(qualities) == {"occlusion", "blur", "illumination", "completeness", "type"}
        assert set(qualities["occlusion"]) == {
            "left_eye",
            "right_eye",
            "nose",
            "mouth",
            "left_cheek",
            "right_cheek",
            "chin",
        }
        assert isinstance(qualities["illumination"], int) and 0 <= qualities["illumination"] <= 255
        assert set(qualities["type"]) == {"human", "cartoon"} and qualities["type"]["human"] > 0.5
        assert "landmark" not in face  # only what was asked for
    # Fields come only when asked for, one by one.
    face = server.call(DETECT_PATHS[1], image=b64(astronaut), face_fields="age")["result"][0]
    assert "age" in face and not {"gender", "qualities", "beauty", "landmark72"} & set(face)


def test_max_face_num_picks_the_largest_faces(
    server: Server, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    canvas = np.full((700, 1100, 3), 90, np.uint8)
    canvas[:512, :512] = astronaut
    small = hopper[::2, ::2]
    canvas[100 : 100 + small.shape[0], 700 : 700 + small.shape[1]] = small
    one = server.call(DETECT_PATHS[1], image=b64(canvas))
    two = server.call(DETECT_PATHS[1], image=b64(canvas), max_face_num="5")
    assert one["result_num"] == 1 and two["result_num"] == 2
    first, second = list(two["result"])
    assert first["location"] == one["result"][0]["location"]
    assert first["location"]["width"] > second["location"]["width"]


def test_query_string_parameters_work_too(server: Server, astronaut: np.ndarray) -> None:
    response = server.post(
        DETECT_PATHS[0], {"image": b64(astronaut)}, params={"max_face_num": "2", "face_fields": "landmark"}
    )
    assert "landmark72" in response.json()["result"][0]


def test_no_face_is_an_empty_result(server: Server) -> None:
    body = server.call(DETECT_PATHS[1], image=b64(np.full((200, 200, 3), 127, np.uint8)))
    assert body["result_num"] == 0 and body["result"] == []
