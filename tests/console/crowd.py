"""Big groups for the console's tests, made in seconds: one real enrolment through the API, then the
rest written to the store beside the running server (as `renlian import` does), which its index
follows within a poll.

The extra users reuse the real face's crop (their thumbnails) with random embeddings: they are for
listing, counting and paging, not for search.
"""

from __future__ import annotations

import hashlib

import httpx
import numpy as np

from renlian.settings import Settings
from renlian.store.base import NewFace
from renlian.store.open import open_store
from renlian.vision.recognizer import EMBEDDING_DIMS
from tests.conftest import Server
from tests.console.browser import photo, v3


def fill_group(server: Server, group: str, users: int, first_photo: str = "astronaut.jpg") -> None:
    """`group` with `users` users, user_0000 (a real enrolment of `first_photo`) to user_<users-1>,
    each with one face and the info "Person <n>"."""
    real = {"group_id": group, "user_id": "user_0000", "user_info": "Person 0"}
    added = v3(server, "faceset/user/add", {**real, "image": photo(first_photo), "image_type": "BASE64"})
    assert added["error_code"] == 0, added
    crop = httpx.get(
        f"{server.base_url}/console/api/faces/{added['result']['face_token']}.jpg",
        params={"access_token": server.token},
    ).content
    settings = Settings(data_dir=server.data_dir)
    store, _ = open_store(settings)
    vectors = np.random.default_rng(7).standard_normal((users, EMBEDDING_DIMS[settings.recognizer]))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    try:
        for number in range(1, users):
            face = NewFace(
                image_sha256=hashlib.sha256(f"{group}/{number}".encode()).hexdigest(),
                model=settings.recognizer,
                embedding=vectors[number].astype(np.float32),
                crop_jpeg=crop,
            )
            store.enrol(
                server.app["app_id"],
                f"user_{number:04d}",
                f"Person {number}",
                [group],
                [face],
                replace=False,
                require_existing=False,
                max_group_faces=settings.max_group_faces,
            )
    finally:
        store.close()
