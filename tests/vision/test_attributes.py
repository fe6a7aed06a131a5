"""Every attribute answers to the pixels: each test compares a photo with a copy changed in one known
way (or two people who differ in one known way), so a field replaced by a constant fails here."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.attributes import (
    ATTRIBUTE_FIELDS,
    FACESHAPE_ORDER,
    OCCLUSION_REGIONS,
    Attributes,
    Qualities,
    jaw_to_temple,
    mouth_opening,
)
from renlian.vision.image import BGRImage
from renlian.vision.recognizer import ARCFACE_TEMPLATE
from tests.conftest import read

ALL = frozenset(ATTRIBUTE_FIELDS)


def describe(analyzer: FaceAnalyzer, image: BGRImage) -> Attributes:
    faces = analyzer.detect(image, 1, attributes=ALL)
    assert faces, "no face found"
    assert faces[0].attributes is not None
    return faces[0].attributes


@pytest.fixture(scope="module")
def people() -> dict[str, BGRImage]:
    return {name: read(f"{name}.jpg") for name in ("astronaut", "grace_hopper", "obama", "biden")}


@pytest.fixture(scope="module")
def described(analyzer: FaceAnalyzer, people: dict[str, BGRImage]) -> dict[str, Attributes]:
    return {name: describe(analyzer, image) for name, image in people.items()}


def _qualities(attributes: Attributes) -> Qualities:
    assert attributes.qualities is not None
    return attributes.qualities


def test_every_field_has_the_spec_type_and_range(described: dict[str, Attributes]) -> None:
    for attributes in described.values():
        assert attributes.age is not None and 1.0 <= attributes.age <= 100.0
        assert attributes.beauty is not None and 0.0 <= attributes.beauty <= 100.0
        assert attributes.expression is not None and attributes.expression[0] in (0, 1, 2)
        assert attributes.gender is not None and attributes.gender[0] in ("male", "female")
        assert attributes.glasses is not None and attributes.glasses[0] in (0, 1, 2)
        assert attributes.race is not None and attributes.race[0] in ("yellow", "white", "black", "arabs")
        for _, p in (attributes.expression, attributes.gender, attributes.glasses, attributes.race):
            assert 0.0 <= p <= 1.0
        # The returned class is the most likely one, so its probability is at least 1 / classes.
        assert attributes.gender[1] >= 0.5 and attributes.glasses[1] >= 1 / 3
        assert attributes.faceshape is not None
        assert [name for name, _ in attributes.faceshape] == list(FACESHAPE_ORDER)
        assert sum(p for _, p in attributes.faceshape) == pytest.approx(1.0, abs=1e-6)
        q = _qualities(attributes)
        assert set(q.occlusion) == set(OCCLUSION_REGIONS)
        assert all(0.0 <= p <= 1.0 for p in q.occlusion.values())
        assert 0.0 <= q.blur <= 1.0 and 0.0 <= q.illumination <= 255.0 and 0.0 <= q.incompleteness <= 1.0
        assert q.human + q.cartoon == pytest.approx(1.0, abs=1e-6)


def test_gender_tells_these_women_from_these_men(described: dict[str, Attributes]) -> None:
    genders = {name: a.gender[0] for name, a in described.items() if a.gender}
    assert genders == {"astronaut": "female", "grace_hopper": "female", "obama": "male", "biden": "male"}
    # With confidence: each man is more likely male than each woman by a clear margin (a constant head,
    # or one that answered by chance, gives the same probability to all four).
    male = {
        name: p if kind == "male" else 1 - p
        for name, a in described.items()
        if a.gender
        for kind, p in [a.gender]
    }
    for man in ("obama", "biden"):
        for woman in ("astronaut", "grace_hopper"):
            assert male[man] - male[woman] >= 0.25, (man, woman, male)
    assert (male["obama"] + male["biden"] - male["astronaut"] - male["grace_hopper"]) / 2 >= 0.5, male


def test_age_orders_younger_and_older_people(described: dict[str, Attributes]) -> None:
    ages = {name: a.age for name, a in described.items()}
    # Eileen Collins was about 42 in her portrait, Grace Hopper 77 in hers.
    assert ages["grace_hopper"] is not None and ages["astronaut"] is not None
    assert ages["grace_hopper"] - ages["astronaut"] >= 10


def test_a_mirrored_face_keeps_gender_and_age(
    analyzer: FaceAnalyzer, people: dict[str, BGRImage], described: dict[str, Attributes]
) -> None:
    for name, image in people.items():
        mirrored = describe(analyzer, image[:, ::-1].copy())
        original = described[name]
        assert mirrored.gender is not None and original.gender is not None
        # The heads are not mirror-symmetric by construction, so a borderline face may flip; the
        # probability of the original answer must stay close.
        kept = mirrored.gender[1] if mirrored.gender[0] == original.gender[0] else 1 - mirrored.gender[1]
        assert abs(kept - original.gender[1]) <= 0.25, (name, original.gender, mirrored.gender)
        assert mirrored.age is not None and original.age is not None
        assert abs(mirrored.age - original.age) <= 8, (name, original.age, mirrored.age)


def test_beauty_and_face_shape_differ_between_people(described: dict[str, Attributes]) -> None:
    beauty = [a.beauty for a in described.values() if a.beauty is not None]
    assert max(beauty) - min(beauty) >= 3
    shapes = [np.array([p for _, p in a.faceshape]) for a in described.values() if a.faceshape]
    assert max(float(np.abs(s - shapes[0]).sum()) for s in shapes[1:]) >= 0.05


def test_blur_rises_on_a_blurred_copy(analyzer: FaceAnalyzer, people: dict[str, BGRImage]) -> None:
    image = people["astronaut"]
    sharp = _qualities(describe(analyzer, image)).blur
    soft = _qualities(describe(analyzer, cv2.GaussianBlur(image, (0, 0), 4))).blur
    assert sharp < 0.3 and soft > sharp + 0.3


def test_illumination_falls_on_a_darkened_copy(analyzer: FaceAnalyzer, people: dict[str, BGRImage]) -> None:
    image = people["obama"]
    bright = _qualities(describe(analyzer, image)).illumination
    dark = _qualities(describe(analyzer, (image.astype(np.float32) * 0.4).astype(np.uint8))).illumination
    assert bright - dark >= 40


def test_completeness_marks_a_face_cut_by_the_frame(
    analyzer: FaceAnalyzer, people: dict[str, BGRImage]
) -> None:
    image = people["obama"]
    face = analyzer.detect(image, 1)[0]
    whole = _qualities(describe(analyzer, image)).incompleteness
    x, _, w, _ = face.box
    cut = image[:, int(x + w * 0.5) :].copy()  # the frame now cuts the face in half
    assert whole < 0.05
    # About a third of the face region is beyond the frame now, not all of it.
    assert 0.15 < _qualities(describe(analyzer, cut)).incompleteness < 0.7


def _cover(image: BGRImage, analyzer: FaceAnalyzer, box: tuple[int, int, int, int]) -> BGRImage:
    """A black box drawn over part of the face, given in aligned-crop coordinates."""
    from renlian.vision.crop import similarity_to

    face = analyzer.detect(image, 1)[0]
    matrix = similarity_to(ARCFACE_TEMPLATE, face.kps5)
    x0, y0, x1, y1 = box
    corners = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], np.float64)
    polygon = (corners @ matrix[:, :2].T + matrix[:, 2]).astype(np.int32)
    covered = image.copy()
    cv2.fillConvexPoly(covered, polygon, (0, 0, 0))
    return covered


def test_occlusion_rises_where_the_face_is_covered(
    analyzer: FaceAnalyzer, people: dict[str, BGRImage]
) -> None:
    for name in ("astronaut", "obama"):
        image = people[name]
        clear = _qualities(describe(analyzer, image)).occlusion
        eyes = _qualities(describe(analyzer, _cover(image, analyzer, (22, 38, 90, 64)))).occlusion
        mouth = _qualities(describe(analyzer, _cover(image, analyzer, (34, 80, 78, 104)))).occlusion
        assert max(clear.values()) < 0.5, (name, clear)
        assert eyes["left_eye"] > 0.5 and eyes["right_eye"] > 0.5, (name, eyes)
        assert mouth["mouth"] > 0.5 and mouth["left_eye"] < 0.5, (name, mouth)


def test_sunglasses_drawn_on_a_face_are_seen(analyzer: FaceAnalyzer, people: dict[str, BGRImage]) -> None:
    image = people["obama"]
    face = analyzer.detect(image, 1)[0]
    shaded = image.copy()
    (lx, ly), (rx, ry) = face.kps5[0], face.kps5[1]
    radius = int(abs(rx - lx) * 0.38)
    for x, y in ((lx, ly), (rx, ry)):
        cv2.circle(shaded, (int(x), int(y)), radius, (20, 20, 20), -1)
    cv2.line(shaded, (int(lx + radius), int(ly)), (int(rx - radius), int(ry)), (20, 20, 20), 3)
    plain, dark = describe(analyzer, image).glasses, describe(analyzer, shaded).glasses
    assert plain is not None and plain[0] == 0
    assert dark is not None and dark[0] == 2


def _cartoon(image: BGRImage) -> BGRImage:
    """Flat colours inside dark outlines: the look of the cartoon avatars the type head learned."""
    smooth = image
    for _ in range(4):
        smooth = cv2.bilateralFilter(smooth, 9, 60, 9)
    flat = (smooth // 48) * 48 + 24
    edges = cv2.adaptiveThreshold(
        cv2.medianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), 7),
        255,
        cv2.ADAPTIVE_THRESH_MEAN_C,
        cv2.THRESH_BINARY,
        9,
        4,
    )
    return cv2.bitwise_and(flat.astype(np.uint8), flat.astype(np.uint8), mask=edges)


def test_a_cartoon_version_scores_cartoon(analyzer: FaceAnalyzer, people: dict[str, BGRImage]) -> None:
    for name in ("astronaut", "obama"):
        photo = _qualities(describe(analyzer, people[name]))
        drawn = _qualities(describe(analyzer, _cartoon(people[name])))
        assert photo.human > 0.5, name
        assert drawn.cartoon > photo.cartoon + 0.3, name


def test_expression_tells_smiles_from_a_straight_face(described: dict[str, Attributes]) -> None:
    expressions = {name: a.expression[0] for name, a in described.items() if a.expression}
    assert expressions["grace_hopper"] == 0
    assert expressions["obama"] >= 1 and expressions["astronaut"] >= 1


def test_race_and_glasses_differ_where_the_people_do(described: dict[str, Attributes]) -> None:
    races = {name: a.race[0] for name, a in described.items() if a.race}
    assert races["astronaut"] == races["grace_hopper"] == races["biden"] == "white"
    assert races["obama"] != "white"
    glasses = {name: a.glasses[0] for name, a in described.items() if a.glasses}
    assert glasses == {"astronaut": 0, "grace_hopper": 1, "obama": 0, "biden": 0}


def test_rule_measures_follow_the_geometry() -> None:
    points = np.zeros((106, 2), np.float32)
    points[52], points[61] = (40, 90), (72, 90)  # mouth corners, 32 px apart
    points[62], points[60] = (56, 88), (56, 92)
    assert mouth_opening(points) == pytest.approx(4 / 32)
    points[60] = (56, 104)
    assert mouth_opening(points) == pytest.approx(16 / 32)
    points[1], points[17] = (20, 50), (92, 50)
    points[16], points[32] = (30, 95), (82, 95)
    assert jaw_to_temple(points) == pytest.approx(52 / 72)
