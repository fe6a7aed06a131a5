"""v3 detect's eye_status, emotion, mask and spoofing through a real server: Baidu's shapes, only when
asked for, and values that follow the photo (tests/vision/test_v3fields.py changes photos in more ways)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from renlian.vision.crop import similarity_to
from renlian.vision.recognizer import ARCFACE_TEMPLATE
from tests.api.test_landmark150 import detect
from tests.api.test_v3 import call
from tests.conftest import Server, b64, read
from tests.vision.test_v3fields import MASK, shut_eye_at

FIELDS = "eye_status,emotion,mask,spoofing"
EMOTIONS = {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def check_shape(face: dict[str, Any]) -> None:
    eyes = face["eye_status"]
    assert set(eyes) == {"left_eye", "right_eye"}
    assert all(isinstance(eyes[k], float) and 0.0 <= eyes[k] <= 1.0 for k in eyes), eyes
    emotion = face["emotion"]
    assert set(emotion) == {"type", "probability"} and emotion["type"] in EMOTIONS, emotion
    assert 1 / 7 <= emotion["probability"] <= 1.0
    mask = face["mask"]
    assert set(mask) == {"type", "probability"} and mask["type"] in (0, 1) and type(mask["type"]) is int, mask
    assert 0.5 <= mask["probability"] <= 1.0
    assert isinstance(face["spoofing"], float) and 0.0 <= face["spoofing"] <= 1.0


def test_detect_answers_each_field_in_baidus_shape(server: Server) -> None:
    for photo in ("astronaut.jpg", "obama.jpg"):
        face = detect(server, read(photo), FIELDS)
        check_shape(face)
        assert min(face["eye_status"].values()) > 0.8, face["eye_status"]
        assert face["emotion"]["type"] == "happy", face["emotion"]
        assert face["mask"]["type"] == 0 and face["spoofing"] < 0.5, face


def test_each_field_is_left_out_unless_asked_for(server: Server) -> None:
    face = detect(server, read("astronaut.jpg"), "age,quality")
    assert not set(face) & {"eye_status", "emotion", "mask", "spoofing"}
    face = detect(server, read("astronaut.jpg"), "mask")
    assert "mask" in face and not set(face) & {"eye_status", "emotion", "spoofing"}


def test_a_drawn_mask_and_a_drawn_shut_eye_change_the_answer(server: Server) -> None:
    photo = read("obama.jpg")
    plain = detect(server, photo, FIELDS)
    # The answer's own 4-point landmark (eye centres, nose tip, mouth centre) places the drawings in
    # the aligned crop's frame: a mask over nose, mouth and chin, and the image-left eye drawn shut.
    marks = detect(server, photo, "landmark")["landmark"]
    found = np.array([[p["x"], p["y"]] for p in marks], np.float32)
    template = np.vstack([ARCFACE_TEMPLATE[:3], ARCFACE_TEMPLATE[3:].mean(axis=0)])
    matrix = similarity_to(template, found)
    masked = photo.copy()
    outline = np.array(MASK, np.float64) @ matrix[:, :2].T + matrix[:, 2]
    cv2.fillPoly(masked, [outline.astype(np.int32)], (230, 216, 173), cv2.LINE_AA)
    with_mask = detect(server, masked, FIELDS)
    check_shape(with_mask)
    assert plain["mask"]["type"] == 0 and with_mask["mask"]["type"] == 1, (plain["mask"], with_mask["mask"])
    eyes = detect(server, shut_eye_at(photo, matrix, 0), "eye_status")["eye_status"]
    assert eyes["left_eye"] < plain["eye_status"]["left_eye"] - 0.3 and eyes["right_eye"] > 0.8, eyes


def test_faceverify_answers_spoofing_when_asked(server: Server) -> None:
    image = {"image": b64(read("astronaut.jpg")), "image_type": "BASE64", "face_field": "spoofing,emotion"}
    answer = call(server, "faceverify", [image])
    assert answer["error_code"] == 0, answer
    face = answer["result"]["face_list"][0]
    assert isinstance(face["spoofing"], float) and face["emotion"]["type"] in EMOTIONS, face
    assert np.isfinite(face["spoofing"])
