"""core/search.py: the one search behind v2 identify and v3 search, verify as a search for one user,
and the pair score, on the real models and a real SQLite library."""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
import pytest

from renlian.core.controls import NO_CONTROLS
from renlian.core.faces import FaceOperations, Photo
from renlian.core.facetokens import FaceTokenCache
from renlian.core.search import Recognition
from renlian.errors import ErrorCode, FaceApiError
from renlian.library.library import FaceLibrary
from renlian.settings import Settings
from renlian.store.sqlite import SQLiteStore
from renlian.vision.analyzer import FaceAnalyzer
from tests.conftest import b64, read

APP = "app"


@pytest.fixture(scope="module")
def recognition(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> Iterator[Recognition]:
    store = SQLiteStore(tmp_path_factory.mktemp("search") / "store.sqlite3")
    library = FaceLibrary(store, analyzer)
    settings = Settings()
    ops = FaceOperations(
        analyzer, library, settings.image_limits(), settings.image_fetcher(), FaceTokenCache(100, 60)
    )
    for uid, photo in (("astronaut", "astronaut.jpg"), ("hopper", "grace_hopper.jpg")):
        face, _ = ops.enrolment(APP, ops.base64_photo(b64(read(photo))), NO_CONTROLS)
        library.add(APP, uid, uid, ["g"], [face], replace=False, require_existing=False)
    yield Recognition(ops, library)
    library.close()
    store.close()


def photo(recognition: Recognition, name: str, side: int = 384) -> Photo:
    return recognition.ops.base64_photo(b64(cv2.resize(read(name), (side, side))))


def test_identify_and_search_are_one_call(recognition: Recognition) -> None:
    probe = photo(recognition, "astronaut.jpg")
    v2_probe, v2_found = recognition.search(APP, ["g"], probe, 2, liveness=True, require_faces=True)
    v3_probe, v3_found = recognition.search(APP, ["g"], probe, 2, controls=NO_CONTROLS)
    assert v2_found == v3_found and [match.uid for match in v2_found] == ["astronaut", "hopper"]
    assert v2_found[0].scores[0] > 80 > v2_found[1].scores[0]
    assert v2_probe.token == v3_probe.token
    # v2 asked for liveness without a threshold; v3 without controls measured none.
    assert v2_probe.examined.liveness is not None and v3_probe.examined.liveness is None


def test_verify_is_a_search_for_one_user(recognition: Recognition) -> None:
    probe = photo(recognition, "grace_hopper.jpg")
    _, scores = recognition.verify(APP, "hopper", ["g"], probe, 5)
    _, found = recognition.search(APP, ["g"], probe, 1, only_uid="hopper")
    assert scores == found[0].scores and scores[0] > 80
    with pytest.raises(FaceApiError) as refused:
        recognition.verify(APP, "nobody", ["g"], probe, 5)
    assert refused.value.error is ErrorCode.USER_NOT_EXIST


def test_a_group_without_faces_is_refused_only_where_v2_asks(recognition: Recognition) -> None:
    probe = photo(recognition, "astronaut.jpg")
    with pytest.raises(FaceApiError) as refused:
        recognition.search(APP, ["g", "empty"], probe, 1, require_faces=True)
    assert refused.value.error is ErrorCode.GROUP_NOT_EXIST
    _, found = recognition.search(APP, ["g", "empty"], probe, 1)
    assert [match.uid for match in found] == ["astronaut"]


def test_every_face_of_a_photo_in_one_pass(recognition: Recognition) -> None:
    both = np.hstack([cv2.resize(read(name), (320, 320)) for name in ("astronaut.jpg", "grace_hopper.jpg")])
    pair = recognition.ops.base64_photo(b64(both))
    found = recognition.search_faces(APP, ["g"], pair, 10, 1)
    assert sorted(matches[0].uid for _, matches in found) == ["astronaut", "hopper"]
    blank = recognition.ops.base64_photo(b64(np.full((200, 200, 3), 180, np.uint8)))
    with pytest.raises(FaceApiError) as refused:
        recognition.search_faces(APP, ["g"], blank, 10, 1)
    assert refused.value.error is ErrorCode.FACE_NOT_FOUND


def test_the_pair_score(recognition: Recognition) -> None:
    ops = recognition.ops
    same = [ops.probe(APP, photo(recognition, "astronaut.jpg", side), NO_CONTROLS) for side in (384, 256)]
    other = ops.probe(APP, photo(recognition, "grace_hopper.jpg"), NO_CONTROLS)
    assert recognition.similarity(*same) == recognition.similarity(same[1], same[0])
    assert recognition.similarity(*same) > 80 > recognition.similarity(same[0], other)
