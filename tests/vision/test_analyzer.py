"""The real models on real photos: checks that a constant or a wrong wiring would fail."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from renlian.errors import ErrorCode, FaceApiError
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.landmarks import LANDMARK4_FROM_106, LANDMARK72_FROM_106, project
from renlian.vision.score import similarity_score


def rotate(image: np.ndarray, clockwise_degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), -clockwise_degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def place(image: np.ndarray, canvas: tuple[int, int], at: tuple[int, int]) -> np.ndarray:
    out = np.full((*canvas, 3), 90, np.uint8)
    out[at[1] : at[1] + image.shape[0], at[0] : at[0] + image.shape[1]] = image
    return out


def score(analyzer: FaceAnalyzer, a: np.ndarray, b: np.ndarray) -> float:
    cosine = float(analyzer.embed_largest(a) @ analyzer.embed_largest(b))
    return similarity_score(cosine, analyzer.embedder.name)


def test_one_face_found_with_plausible_box(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    faces = analyzer.detect(astronaut, 5)
    assert len(faces) == 1
    x, y, w, h = faces[0].box
    # The face in the NASA portrait sits in the upper middle, about 90 x 110 px.
    assert 150 < x < 210 and 40 < y < 90 and 70 < w < 120 and 90 < h < 140
    assert faces[0].score > 0.8


def test_a_shifted_face_moves_box_and_landmarks_by_the_offset(
    analyzer: FaceAnalyzer, astronaut: np.ndarray
) -> None:
    face_region = astronaut[20:260, 120:330]
    # The canvas stays under the detector's 640 px so that it is not resized, and the offset is a
    # multiple of the detector's coarsest stride (32 px), where a convolutional detector is
    # shift-equivariant up to border effects.
    first = analyzer.detect(place(face_region, (640, 600), (16, 24)), 1, landmarks=True)[0]
    second = analyzer.detect(place(face_region, (640, 600), (16 + 288, 24 + 352)), 1, landmarks=True)[0]
    offset = np.array([288, 352], np.float32)
    assert np.allclose(second.box[:2] - first.box[:2], offset, atol=2)
    assert np.allclose(second.box[2:], first.box[2:], atol=2)
    assert first.landmarks106 is not None and second.landmarks106 is not None
    assert np.allclose(second.landmarks106 - first.landmarks106, offset, atol=2)


def test_faces_come_largest_first_and_max_faces_is_respected(
    analyzer: FaceAnalyzer, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    small = cv2.resize(hopper, None, fx=0.5, fy=0.5)
    canvas = place(astronaut, (700, 1100), (0, 0))
    canvas[100 : 100 + small.shape[0], 700 : 700 + small.shape[1]] = small
    faces = analyzer.detect(canvas, 5)
    assert len(faces) == 2
    assert faces[0].area > faces[1].area
    assert faces[0].box[0] < 512 < faces[1].box[0]
    assert len(analyzer.detect(canvas, 1)) == 1


def test_roll_and_rotation_angle_follow_an_in_plane_rotation(
    analyzer: FaceAnalyzer, astronaut: np.ndarray
) -> None:
    upright = analyzer.detect(astronaut, 1)[0].pose
    clockwise = analyzer.detect(rotate(astronaut, 20), 1)[0].pose
    counter = analyzer.detect(rotate(astronaut, -20), 1)[0].pose
    assert upright is not None and clockwise is not None and counter is not None
    assert abs(upright.roll) < 8
    assert 12 < clockwise.roll - upright.roll < 28
    assert -28 < counter.roll - upright.roll < -12
    assert clockwise.rotation_angle > 10 > -10 > counter.rotation_angle


def turn(image: np.ndarray, centre_x: float, radius: float, degrees: float) -> np.ndarray:
    """Turn a face about a vertical axis by wrapping it round a cylinder: a crude, real yaw."""
    height, width = image.shape[:2]
    xs = np.arange(width, dtype=np.float32)
    angle = np.arcsin(np.clip((xs - centre_x) / radius, -1, 1)) - np.radians(degrees)
    source = np.where(np.abs(xs - centre_x) < radius, centre_x + radius * np.sin(angle), xs)
    map_x = np.tile(source.astype(np.float32), (height, 1))
    map_y = np.tile(np.arange(height, dtype=np.float32)[:, None], (1, width))
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR)


def test_yaw_follows_the_direction_the_nose_turns(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    x, _, w, _ = analyzer.detect(astronaut, 1)[0].box
    yaws = []
    for degrees in (-30, 0, 30):
        pose = analyzer.detect(turn(astronaut, x + w / 2, w * 0.75, degrees), 1)[0].pose
        assert pose is not None
        yaws.append(pose.yaw)
    # Positive degrees move the nose towards the image's right: Baidu's positive yaw.
    assert yaws[0] < yaws[1] - 4 and yaws[2] > yaws[1] + 4


def test_landmark72_layout_is_anatomically_ordered(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    face = analyzer.detect(astronaut, 1, landmarks=True)[0]
    assert face.landmarks106 is not None
    p72 = project(face.landmarks106, LANDMARK72_FROM_106)
    p4 = project(face.landmarks106, LANDMARK4_FROM_106)
    assert p72.shape == (72, 2)
    contour = p72[0:13]
    assert np.argmax(contour[:, 1]) == 6  # the chin is the lowest contour point
    assert contour[0, 0] < contour[6, 0] < contour[12, 0]
    left_eye, right_eye = p72[21], p72[38]
    assert left_eye[0] < right_eye[0]
    assert p72[14, 1] < left_eye[1] < p72[19, 1]  # upper lid above the pupil, lower lid below
    assert p72[32, 1] < right_eye[1] < p72[36, 1]
    assert p72[22:30, 1].mean() < left_eye[1] and p72[39:47, 1].mean() < right_eye[1]  # brows above
    nose_tip, mouth = p4[2], p4[3]
    assert left_eye[1] < nose_tip[1] < mouth[1] < contour[6, 1]
    assert p72[58, 0] < mouth[0] < p72[62, 0]  # mouth corners either side of its centre
    assert p72[60, 1] < mouth[1]  # 60 is on the upper lip
    assert np.allclose(p4[0], left_eye) and np.allclose(p4[1], right_eye)
    # Every point lies inside a generous margin around the detector's box.
    x, y, w, h = face.box
    assert np.all((p72[:, 0] > x - w * 0.3) & (p72[:, 0] < x + w * 1.3))
    assert np.all((p72[:, 1] > y - h * 0.3) & (p72[:, 1] < y + h * 1.3))


def test_a_face_matches_itself_and_its_transformed_copies(
    analyzer: FaceAnalyzer, astronaut: np.ndarray
) -> None:
    assert score(analyzer, astronaut, astronaut) > 99
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    assert score(analyzer, astronaut, mirrored) > 90
    assert score(analyzer, astronaut, rotate(astronaut, 15)) > 85
    assert score(analyzer, astronaut, cv2.resize(astronaut, None, fx=0.5, fy=0.5)) > 90


def test_different_people_score_below_the_recommended_threshold(
    analyzer: FaceAnalyzer, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    assert score(analyzer, astronaut, hopper) < 50


def test_no_face_raises_216402(analyzer: FaceAnalyzer) -> None:
    blank = np.full((300, 300, 3), 127, np.uint8)
    with pytest.raises(FaceApiError) as caught:
        analyzer.embed_largest(blank)
    assert caught.value.error is ErrorCode.FACE_NOT_FOUND
    assert analyzer.detect(blank, 5) == []


def test_judging_a_faces_controls_runs_no_recognizer_and_scores_as_examining_it(
    analyzer: FaceAnalyzer, astronaut: np.ndarray
) -> None:
    face = analyzer.largest_face(astronaut)
    aligned = analyzer.aligned(astronaut, face)
    ran: list[str] = []
    observe = analyzer.observe
    analyzer.observe = lambda model, seconds: ran.append(model)
    try:
        live, qualities = analyzer.judge(astronaut, face, aligned, liveness=True, qualities=False)
        assert analyzer.embedder.name not in ran and "backbone" not in ran
        examined = analyzer.examine(astronaut, face, liveness=True, qualities=True)
        _, judged = analyzer.judge(astronaut, face, aligned, liveness=False, qualities=True)
    finally:
        analyzer.observe = observe
    assert qualities is None and live == examined.liveness
    assert judged is not None and examined.qualities is not None
    assert judged.blur == examined.qualities.blur and judged.occlusion == examined.qualities.occlusion
