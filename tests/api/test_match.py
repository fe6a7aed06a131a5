"""Match over real HTTP, with comma-joined images as the SDK sends them."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from tests.conftest import Server, b64

MATCH = "/rest/2.0/face/v2/match"


def scores(body: dict[str, Any]) -> dict[tuple[int, int], float]:
    return {(r["index_i"], r["index_j"]): r["score"] for r in body["result"]}


def test_same_person_high_different_people_low(
    server: Server, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    mirrored = np.ascontiguousarray(astronaut[:, ::-1])
    body = server.call(MATCH, images=",".join([b64(astronaut), b64(mirrored), b64(hopper)]))
    assert body["result_num"] == 3
    result = scores(body)
    assert set(result) == {(0, 1), (0, 2), (1, 2)}
    assert result[(0, 1)] > 90
    assert result[(0, 2)] < 80 and result[(1, 2)] < 80
    assert all(0 <= s <= 100 for s in result.values())


def test_a_photo_matched_with_itself_scores_above_95(server: Server, hopper: np.ndarray) -> None:
    assert scores(server.call(MATCH, images=f"{b64(hopper)},{b64(hopper, '.png')}"))[(0, 1)] > 95


def test_the_largest_face_of_each_image_is_used(
    server: Server, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    canvas = np.full((700, 1100, 3), 90, np.uint8)
    canvas[:512, :512] = astronaut
    small = hopper[::3, ::3]
    canvas[100 : 100 + small.shape[0], 700 : 700 + small.shape[1]] = small
    result = scores(server.call(MATCH, images=f"{b64(canvas)},{b64(astronaut)},{b64(hopper)}"))
    assert result[(0, 1)] > 90 and result[(0, 2)] < 80


def test_image_liveness_scores_the_images_asked_for(server: Server, astronaut: np.ndarray) -> None:
    images = f"{b64(astronaut)},{b64(astronaut)}"
    both = server.call(MATCH, images=images, image_liveness="faceliveness,faceliveness")
    first, second = both["ext_info"][0]["faceliveness"].split(",")
    assert 0 <= float(first) <= 1 and first == second  # the same photo twice scores the same
    assert "." in first  # a checked image has a score, never the bare "0" of an unchecked one
    only_second = server.call(MATCH, images=images, image_liveness=",faceliveness")
    assert only_second["ext_info"][0]["faceliveness"] == f"0,{second}"
    only_first = server.call(MATCH, images=images, image_liveness="faceliveness,")
    assert only_first["ext_info"][0]["faceliveness"] == f"{first},0"
    assert "ext_info" not in server.call(MATCH, images=images)


def test_ext_fields_qualities_describes_each_image(server: Server, astronaut: np.ndarray) -> None:
    dark = (astronaut * 0.4).astype(np.uint8)
    body = server.call(
        MATCH, images=f"{b64(astronaut)},{b64(dark)}", ext_fields="qualities", image_liveness=",faceliveness"
    )
    assert body["ext_info"][0]["faceliveness"].startswith("0,")  # both answers share the one entry
    per_image = json.loads(body["ext_info"][0]["qualities"])
    assert len(per_image) == 2
    for qualities in per_image:
        assert set(qualities) == {"occlusion", "blur", "illumination", "completeness", "type"}
        assert 0 <= qualities["blur"] <= 1 and 0 <= qualities["completeness"] <= 1
    assert per_image[0]["illumination"] - per_image[1]["illumination"] >= 40
