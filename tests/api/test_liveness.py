"""Every liveness field answers the replay-aware score: faceverify's face_liveness, liveness_control,
v2 match's image_liveness and identify's ext_fields=faceliveness, for a photo and for the same photo
shown on a phone and filmed (synthetic). The print-only model served before scored that replay 1.000."""

from __future__ import annotations

import numpy as np
import pytest

from renlian.core.controls import LIVENESS
from tests.api.test_v3 import call, code
from tests.conftest import Server, b64, read
from training.liveness_replay.synth import replay

MATCH = "/rest/2.0/face/v2/match"


@pytest.fixture(scope="module")
def pair() -> tuple[str, str]:
    photo = read("grace_hopper.jpg")
    return b64(photo), b64(replay(photo, np.random.default_rng(0), "replay_phone"))


def test_faceverify_tells_the_replay_from_the_photo(server: Server, pair: tuple[str, str]) -> None:
    scores = []
    for image in pair:
        answer = call(server, "faceverify", [{"image": image, "image_type": "BASE64"}])
        assert answer["error_code"] == 0, answer
        result = answer["result"]
        assert result["face_liveness"] == result["face_list"][0]["liveness"]["livemapscore"]
        assert result["thresholds"] == {
            "frr_1e-4": LIVENESS["LOW"],
            "frr_1e-3": LIVENESS["NORMAL"],
            "frr_1e-2": LIVENESS["HIGH"],
        }
        scores.append(result["face_liveness"])
    photo, shown = scores
    assert shown < LIVENESS["LOW"] < LIVENESS["NORMAL"] <= photo, scores


def test_liveness_control_refuses_the_replay_and_enrols_the_photo(
    server: Server, pair: tuple[str, str]
) -> None:
    call(server, "faceset/group/add", {"group_id": "live"})

    def add(image: str, user: str) -> int:
        body = {"image": image, "image_type": "BASE64", "group_id": "live", "user_id": user}
        return code(call(server, "faceset/user/add", {**body, "liveness_control": "NORMAL"}))

    assert add(pair[1], "shown") == 223120
    assert add(pair[0], "photo") == 0


def test_v2_liveness_fields_score_the_replay_low(server: Server, pair: tuple[str, str]) -> None:
    both = server.call(MATCH, images=",".join(pair), image_liveness="faceliveness,faceliveness")
    photo, shown = (float(s) for s in both["ext_info"][0]["faceliveness"].split(","))
    assert shown < LIVENESS["LOW"] and photo >= LIVENESS["NORMAL"], (photo, shown)
