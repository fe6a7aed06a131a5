"""v3 detect's landmark150 through a real server: Baidu's 150 names, placed on the face by the face mesh."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.api.test_v3 import call
from tests.conftest import Server, b64, read

# The spec's list of names (../shared/spec/baidu-face-api-v3.md, from a real Baidu answer).
SPEC_NAMES = {
    *(f"cheek_{side}_{i}" for side in ("left", "right") for i in range(1, 12)),
    *(f"chin_{i}" for i in range(1, 4)),
    *(
        name
        for side in ("left", "right")
        for name in (
            *(f"eyebrow_{side}_upper_{i}" for i in range(1, 6)),
            *(f"eyebrow_{side}_lower_{i}" for i in range(1, 4)),
            f"eyebrow_{side}_corner_left",
            f"eyebrow_{side}_corner_right",
            *(f"eye_{side}_eyelid_{lid}_{i}" for lid in ("upper", "lower") for i in range(1, 8)),
            f"eye_{side}_corner_left",
            f"eye_{side}_corner_right",
            *(f"eye_{side}_eyeball_{part}" for part in ("center", "left", "right")),
        )
    ),
    *(f"nose_bridge_{i}" for i in range(1, 4)),
    *(f"nose_{side}_contour_{i}" for side in ("left", "right") for i in range(1, 8)),
    "nose_middle_contour",
    "nose_tip",
    *(f"mouth_corner_{side}_{line}" for side in ("left", "right") for line in ("outer", "inner")),
    *(
        f"mouth_lip_{lip}_{line}_{i}"
        for lip in ("upper", "lower")
        for line in ("outer", "inner")
        for i in range(1, 12)
    ),
}
# landmark72 indices and the landmark150 names for the same places (docs/landmark72.md: landmark72's
# "left" is the image's left; landmark150's is the person's own, so the image-left eye is eye_right).
SAME_PLACE = {
    13: "eye_right_corner_right",
    17: "eye_right_corner_left",
    21: "eye_right_eyeball_center",
    30: "eye_left_corner_right",
    34: "eye_left_corner_left",
    38: "eye_left_eyeball_center",
    57: "nose_tip",
    58: "mouth_corner_right_outer",
    62: "mouth_corner_left_outer",
    6: "chin_2",
}
PHOTOS = ("astronaut.jpg", "grace_hopper.jpg", "obama.jpg")


def detect(server: Server, image: np.ndarray, fields: str) -> dict[str, Any]:
    answer = call(server, "detect", {"image": b64(image), "image_type": "BASE64", "face_field": fields})
    assert answer["error_code"] == 0, answer
    face: dict[str, Any] = answer["result"]["face_list"][0]
    return face


def points(face: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: np.array([p["x"], p["y"]], float) for name, p in face["landmark150"].items()}


@pytest.mark.parametrize("photo", PHOTOS)
def test_all_150_names_on_the_face_and_where_landmark72_puts_them(server: Server, photo: str) -> None:
    face = detect(server, read(photo), "landmark150,landmark72")
    named = points(face)
    assert set(named) == SPEC_NAMES and len(named) == 150
    box = face["location"]
    left, top, width, height = box["left"], box["top"], box["width"], box["height"]
    for name, (x, y) in named.items():
        # The jaw line may reach just past the detector's box at the ears and chin (Baidu's own
        # answers do too); everything else lies inside it.
        margin = 0.15 if name.startswith(("cheek", "chin")) else 0.0
        assert left - margin * width <= x <= left + (1 + margin) * width, name
        assert top - margin * height <= y <= top + (1 + margin) * height, name
    seventy_two = np.array([[p["x"], p["y"]] for p in face["landmark72"]])
    eyes = float(np.linalg.norm(named["eye_left_eyeball_center"] - named["eye_right_eyeball_center"]))
    for index, name in SAME_PLACE.items():
        assert np.linalg.norm(seventy_two[index] - named[name]) < 0.12 * eyes, (index, name)


def test_left_and_right_are_the_persons_own_and_numbers_run_left_to_right(server: Server) -> None:
    named = points(detect(server, read("grace_hopper.jpg"), "landmark150"))
    x = {name: float(p[0]) for name, p in named.items()}
    # The person's left is the image's right.
    for part in ("eye_{}_eyeball_center", "eyebrow_{}_upper_3", "cheek_{}_1", "nose_{}_contour_4"):
        assert x[part.format("left")] > x[part.format("right")], part
    assert x["mouth_corner_left_outer"] > x["mouth_lip_upper_outer_6"] > x["mouth_corner_right_outer"]
    for side in ("left", "right"):
        assert x[f"eye_{side}_corner_right"] < x[f"eye_{side}_eyeball_center"] < x[f"eye_{side}_corner_left"]
        assert (
            x[f"eye_{side}_eyeball_right"] < x[f"eye_{side}_eyeball_center"] < x[f"eye_{side}_eyeball_left"]
        )
        for stem, count in ((f"eye_{side}_eyelid_upper", 7), (f"eyebrow_{side}_upper", 5)):
            run = [x[f"{stem}_{i}"] for i in range(1, count + 1)]
            assert run == sorted(run), stem
    for line in ("upper_outer", "lower_outer", "upper_inner", "lower_inner"):
        run = [x[f"mouth_lip_{line}_{i}"] for i in range(1, 12)]
        assert run == sorted(run), line
    y = {name: float(p[1]) for name, p in named.items()}
    assert y["nose_bridge_1"] < y["nose_bridge_2"] < y["nose_bridge_3"] < y["nose_middle_contour"]
    assert y["eyebrow_left_upper_3"] < y["eye_left_eyelid_upper_4"] < y["eye_left_eyelid_lower_4"]
    assert y["mouth_lip_upper_outer_6"] < y["mouth_lip_lower_outer_6"] < y["chin_2"]
    assert max(y[f"cheek_right_{i}"] for i in range(1, 12)) < y["chin_2"]


def test_a_mirrored_photo_swaps_the_names(server: Server) -> None:
    """A model that ignored the pixels, or a table with its sides the wrong way round, fails here."""
    photo = read("astronaut.jpg")
    width = photo.shape[1]
    upright = points(detect(server, photo, "landmark150"))
    mirrored = points(detect(server, np.ascontiguousarray(photo[:, ::-1]), "landmark150"))
    eyes = float(np.linalg.norm(upright["eye_left_eyeball_center"] - upright["eye_right_eyeball_center"]))
    for name, (x, y) in upright.items():
        expected = np.array([width - 1 - x, y])
        assert np.linalg.norm(mirrored[mirror_name(name)] - expected) < 0.1 * eyes, name


def mirror_name(name: str) -> str:
    """The name of the place a mirror puts this one: the other side, and a run numbered from the
    image's left counted from its other end (cheeks and the nose run downwards and keep theirs)."""
    twin = name.replace("left", "\0").replace("right", "left").replace("\0", "right")
    stem, _, number = twin.rpartition("_")
    if not number.isdigit() or stem.startswith(("cheek", "nose")):
        return twin
    count = max(int(other.rpartition("_")[2]) for other in SPEC_NAMES if other.rpartition("_")[0] == stem)
    return f"{stem}_{count + 1 - int(number)}"


def test_left_out_unless_asked_for(server: Server) -> None:
    face = detect(server, read("astronaut.jpg"), "landmark,age")
    assert "landmark150" not in face and "landmark72" in face
