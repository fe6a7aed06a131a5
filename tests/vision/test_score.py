"""The calibrated score map: monotonic, bounded, and 80 exactly at the measured 0.1%-FAR cosine."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from renlian.vision.score import CALIBRATIONS, similarity_score


@pytest.mark.parametrize("recognizer", sorted(CALIBRATIONS))
def test_score_map_is_monotonic_and_bounded(recognizer: str) -> None:
    cosines = np.linspace(-1.2, 1.2, 241)
    scores = [similarity_score(float(c), recognizer) for c in cosines]
    assert scores[0] == 0.0 and scores[-1] == 100.0
    assert all(b >= a for a, b in itertools.pairwise(scores))
    assert len(set(scores)) > 200


@pytest.mark.parametrize("recognizer", sorted(CALIBRATIONS))
def test_anchors_land_on_their_scores(recognizer: str) -> None:
    calibration = CALIBRATIONS[recognizer]
    for cosine, expected in zip(calibration.cosines, calibration.scores, strict=True):
        assert similarity_score(cosine, recognizer) == pytest.approx(expected)
    # The 80 anchor must sit between strangers' typical cosine and a perfect match.
    assert 0.0 < calibration.cosines[calibration.scores.index(80.0)] < 0.6


def test_embedders_have_their_own_scales() -> None:
    assert CALIBRATIONS["mbf"].cosines != CALIBRATIONS["sface"].cosines
