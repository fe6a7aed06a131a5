"""The served liveness score (MiniFASNet, calibrated): a real score in [0, 1], lower for a re-shot print
and a screen replay, from the bundled models, whose files are verified; and square crops."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest

from renlian.core.controls import LIVENESS
from renlian.models.cache import ModelCacheError, verify_file
from renlian.models.registry import BUNDLED
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.faces import Face
from renlian.vision.liveness import (
    MINIFAS_MODELS,
    MINIFAS_SIZE,
    MiniFasScorer,
    calibrated,
    minifas_input,
    square_box,
)
from tests.conftest import read
from training.liveness_replay.synth import replay


def photo_of_photo(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """The portrait printed on paper with a white border, held up slightly tilted in front of a wall
    and photographed again: softer, flatter in contrast, with paper grain and a perspective warp."""
    rng = np.random.default_rng(seed)
    height, width = image.shape[:2]
    printed = cv2.GaussianBlur(image, (0, 0), 1.5).astype(np.float32)
    printed = printed * 0.75 + 40 + rng.normal(0, 6, printed.shape)  # ink on paper: less range, grain
    border = width // 10
    paper = np.full((height + 2 * border, width + 2 * border, 3), 232, np.float32)
    paper[border : border + height, border : border + width] = printed
    scene = np.empty((int(height * 1.3), int(width * 1.3), 3), np.float32)
    scene[:] = np.linspace(70, 120, scene.shape[1], dtype=np.float32)[None, :, None]
    ph, pw = paper.shape[:2]
    sh, sw = scene.shape[:2]
    source = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    target = np.array(
        [[sw * 0.12, sh * 0.08], [sw * 0.86, sh * 0.12], [sw * 0.9, sh * 0.93], [sw * 0.1, sh * 0.9]],
        np.float32,
    )
    warp = cv2.getPerspectiveTransform(source, target)
    cv2.warpPerspective(paper, warp, (sw, sh), dst=scene, borderMode=cv2.BORDER_TRANSPARENT)
    reshot = cv2.GaussianBlur(scene, (0, 0), 0.8) + rng.normal(0, 3, scene.shape)
    return np.clip(reshot, 0, 255).astype(np.uint8)


def score(analyzer: FaceAnalyzer, image: np.ndarray) -> float:
    return analyzer.liveness(image, analyzer.largest_face(image))


def test_scores_are_probabilities(analyzer: FaceAnalyzer, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    for image in (astronaut, hopper, np.ascontiguousarray(astronaut[:, ::-1])):
        assert 0.0 <= score(analyzer, image) <= 1.0


def test_a_reshot_print_scores_lower_than_the_photo(
    analyzer: FaceAnalyzer, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    for image in (astronaut, hopper):
        assert score(analyzer, photo_of_photo(image)) < score(analyzer, image)


def test_a_screen_replay_scores_lower_than_the_photo(analyzer: FaceAnalyzer) -> None:
    for name in ("astronaut", "grace_hopper", "biden", "obama"):
        image = read(f"{name}.jpg")
        shown = replay(image, np.random.default_rng(0), "replay_phone")
        assert score(analyzer, shown) < min(score(analyzer, image), LIVENESS["NORMAL"]), name


def test_the_served_score_is_minifasnet_calibrated(analyzer: FaceAnalyzer, astronaut: np.ndarray) -> None:
    face = analyzer.largest_face(astronaut)
    paths = {name: BUNDLED[name].path for name, _ in MINIFAS_MODELS}
    raw = MiniFasScorer(paths, threads=1).raw(astronaut, face)
    assert analyzer.liveness(astronaut, face) == pytest.approx(calibrated(raw))
    # The two models on their own crops, through onnxruntime directly: the scorer averages them.
    probabilities = []
    for name, scale in MINIFAS_MODELS:
        session = ort.InferenceSession(str(paths[name]), providers=["CPUExecutionProvider"])
        crop = minifas_input(astronaut, face, scale).transpose(2, 0, 1)[None].astype(np.float32)
        probabilities.append(float(session.run(None, {"bgr": crop})[0][0, 1]))
    assert raw == pytest.approx(sum(probabilities) / 2, abs=1e-6)
    assert 0.0 < raw < 1.0


def test_calibration_is_increasing_and_keeps_the_ends() -> None:
    raws = np.linspace(0, 1, 1001)
    served = np.array([calibrated(float(r)) for r in raws])
    assert served[0] == 0.0 and served[-1] == 1.0
    assert np.all(np.diff(served) > 0)


@pytest.mark.parametrize(
    ("name", "card"),
    [("liveness", "liveness.md"), ("minifasnet_v2", "minifasnet.md"), ("minifasnet_v1se", "minifasnet.md")],
)
def test_the_weight_files_are_verified(tmp_path: Path, name: str, card: str) -> None:
    spec = BUNDLED[name]
    assert verify_file(spec.path, spec.sha256, spec.name) == spec.path
    tampered = tmp_path / spec.filename
    shutil.copy(spec.path, tampered)
    with tampered.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ModelCacheError, match="expected"):
        verify_file(tampered, spec.sha256, spec.name)
    assert (spec.path.parent / card).is_file()  # the model card ships beside it
    if name.startswith("minifasnet"):
        assert "Apache License" in (spec.path.parent / "minifasnet.LICENSE").read_text()


def _face(box: tuple[float, float, float, float]) -> Face:
    return Face(box=np.array(box, np.float32), score=1.0, kps5=np.zeros((5, 2), np.float32))


def _texture(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("scale", [scale for _, scale in MINIFAS_MODELS])
def test_a_tall_narrow_box_gives_the_crop_of_its_square(scale: float) -> None:
    image = _texture(480, 640)
    tall = _face((300, 100, 60, 180))  # centre (330, 190), longer side 180
    square = _face((240, 100, 180, 180))
    wide = _face((240, 160, 180, 60))
    crop = minifas_input(image, tall, scale)
    assert crop.shape == (MINIFAS_SIZE, MINIFAS_SIZE, 3)
    assert np.array_equal(crop, minifas_input(image, square, scale))
    assert np.array_equal(crop, minifas_input(image, wide, scale))
    # A different shape of the same square does change it: the test can fail.
    assert not np.array_equal(crop, minifas_input(image, _face((300, 100, 60, 120)), scale))


def test_a_window_over_the_edge_slides_inside_rather_than_padding() -> None:
    image = _texture(480, 640)
    face = _face((0, 0, 100, 100))  # 2.7x its square reaches past the top-left corner
    cx, cy, side = square_box(face.box)
    span = side * 2.7
    assert cx - span / 2 < 0 and cy - span / 2 < 0
    expected = cv2.resize(image[0 : int(span) + 1, 0 : int(span) + 1], (MINIFAS_SIZE, MINIFAS_SIZE))
    assert np.array_equal(minifas_input(image, face, 2.7), expected)


def test_a_face_too_large_for_the_scale_gets_the_largest_square_that_fits() -> None:
    image = _texture(300, 400)
    face = _face((150, 80, 100, 120))
    cx, _, side = square_box(face.box)
    assert side * 4.0 > 300
    # 4.0x the square would be 432 px; the image is 300 high, so the window is 299 px, slid inside.
    top, left = 0, int(cx - 299 / 2)
    expected = cv2.resize(image[top : top + 300, left : left + 300], (MINIFAS_SIZE, MINIFAS_SIZE))
    assert np.array_equal(minifas_input(image, face, 4.0), expected)
