"""The face library's operations, in Baidu v2's terms, over a store and an in-memory index.

Order of a write: embed the photos (no lock held), then, under the app's write lock, commit to the
store (one transaction) and update the index, and only then answer. So a face is searchable by the
very next request after its add returns, and a crash between commit and answer loses no acknowledged
face. The lock makes commit and index update one step: without it, two writes to the same user could
reach the index in the other order than they committed, and a deleted face would stay searchable.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.index import FaceIndex, UserHit
from renlian.store.base import FaceStore, NewFace, UserRecord
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.image import BGRImage

logger = logging.getLogger("renlian.library")

# ASCII only, matched whole: `$` alone would let a trailing newline through.
_ID = re.compile(r"[A-Za-z0-9_]+")
MAX_UID_BYTES = 128
MAX_GROUP_CHARS = 48
MAX_GROUP_PARAM_BYTES = 128
MAX_USER_INFO_BYTES = 256
MAX_GROUP_FACES = 300_000


def parse_uid(value: str) -> str:
    if not _ID.fullmatch(value) or len(value.encode()) > MAX_UID_BYTES:
        raise FaceApiError(
            ErrorCode.INVALID_USERID, f"uid must be 1-{MAX_UID_BYTES} bytes of letters, digits and _"
        )
    return value


def parse_groups(value: str) -> list[str]:
    """A comma-separated group_id list: each of letters, digits and _, at most 48 characters."""
    if len(value.encode()) > MAX_GROUP_PARAM_BYTES:
        raise FaceApiError(ErrorCode.INVALID_PARAM, f"group_id is longer than {MAX_GROUP_PARAM_BYTES} bytes")
    groups = [group.strip() for group in value.split(",")]
    for group in groups:
        if not _ID.fullmatch(group) or len(group) > MAX_GROUP_CHARS:
            raise FaceApiError(
                ErrorCode.INVALID_PARAM,
                f"each group_id must be 1-{MAX_GROUP_CHARS} letters, digits and _ (got {group!r})",
            )
    return list(dict.fromkeys(groups))


def parse_user_info(value: str) -> str:
    if len(value.encode()) > MAX_USER_INFO_BYTES:
        raise FaceApiError(ErrorCode.INVALID_PARAM, f"user_info is longer than {MAX_USER_INFO_BYTES} bytes")
    return value


@dataclass(frozen=True)
class GroupHit:
    group_id: str
    uid: str
    user_info: str
    scores: list[float]  # cosines, best first


class FaceLibrary:
    def __init__(
        self, store: FaceStore, analyzer: FaceAnalyzer, max_group_faces: int = MAX_GROUP_FACES
    ) -> None:
        self.store = store
        self.analyzer = analyzer
        self.max_group_faces = max_group_faces
        self._write_locks: dict[str, threading.Lock] = {}
        self._write_locks_lock = threading.Lock()
        embedder = analyzer.embedder
        self.index = FaceIndex(embedder.name, embedder.dim)
        started = time.perf_counter()
        loaded = self.index.load(store.embeddings(embedder.name), store.group_sizes(embedder.name))
        stale = store.count_stale(embedder.name)
        logger.info("face index: %d faces loaded in %.2f s", loaded, time.perf_counter() - started)
        if stale:
            logger.warning(
                "%d faces were embedded by another model and cannot be searched; run `renlian reindex`", stale
            )

    @contextmanager
    def _writing(self, app_id: str) -> Iterator[None]:
        """Commit and index update of one write, as one step for the app's library (module doc)."""
        with self._write_locks_lock:
            lock = self._write_locks.setdefault(app_id, threading.Lock())
        with lock:
            yield

    def enrolment_face(self, data: bytes, pixels: BGRImage) -> NewFace:
        """What the library keeps of a photo: its file's checksum (what "the same image" means), its
        largest face's embedding and aligned crop. The pixels can be dropped once this returns."""
        embedding, aligned = self.analyzer.enrolment_face(pixels)
        ok, jpeg = cv2.imencode(".jpg", aligned, [cv2.IMWRITE_JPEG_QUALITY, 95])
        assert ok
        return NewFace(
            hashlib.sha256(data).hexdigest(), self.analyzer.embedder.name, embedding, jpeg.tobytes()
        )

    def add(
        self,
        app_id: str,
        uid: str,
        user_info: str | None,
        groups: list[str],
        faces: list[NewFace],
        *,
        replace: bool,
        require_existing: bool,
    ) -> None:
        with self._writing(app_id):
            self.index.apply(
                self.store.enrol(
                    app_id,
                    uid,
                    user_info,
                    groups,
                    faces,
                    replace=replace,
                    require_existing=require_existing,
                    max_group_faces=self.max_group_faces,
                )
            )

    def update(
        self,
        app_id: str,
        uid: str,
        user_info: str | None,
        groups: list[str] | None,
        faces: list[NewFace],
        *,
        create: bool,
    ) -> None:
        """Replace the uid's faces in `groups` (all its groups when None); create it if `create`."""
        if groups is None:
            groups = [record.group_id for record in self.store.user(app_id, uid)]
            if not groups:
                raise FaceApiError(
                    ErrorCode.USER_NOT_EXIST, f"{uid} is not enrolled; pass group_id to create it"
                )
        self.add(app_id, uid, user_info, groups, faces, replace=True, require_existing=not create)

    def delete(self, app_id: str, uid: str, groups: list[str] | None) -> None:
        with self._writing(app_id):
            self.index.apply(self.store.delete_user(app_id, uid, groups))

    def copy(self, app_id: str, uid: str, source: str, targets: list[str]) -> None:
        with self._writing(app_id):
            self.index.apply(self.store.copy_user(app_id, uid, source, targets, self.max_group_faces))

    def remove_from_groups(self, app_id: str, uid: str, groups: list[str]) -> None:
        with self._writing(app_id):
            self.index.apply(self.store.remove_from_groups(app_id, uid, groups))

    def user(self, app_id: str, uid: str) -> list[UserRecord]:
        records = self.store.user(app_id, uid)
        if not records:
            raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not enrolled")
        return records

    def identify(
        self, app_id: str, groups: list[str], pixels: BGRImage, users: int, *, liveness: bool = False
    ) -> tuple[list[GroupHit], float | None]:
        """The best `users` (group, uid) records across `groups` for the photo's largest face, and
        that face's liveness score if asked for."""
        indexes = []
        for group in groups:
            index = self.index.group(app_id, group)
            if index is None or len(index) == 0:
                raise FaceApiError(ErrorCode.NO_USER_IN_GROUP, f"group {group} has no users")
            indexes.append((group, index))
        query, live = self.analyzer.probe(pixels, liveness=liveness)
        found: list[tuple[str, UserHit]] = []
        for group, index in indexes:
            with index.lock:
                found.extend((group, hit) for hit in index.search(query, users, faces_per_user=5))
        found.sort(key=lambda item: -item[1].scores[0])
        hits = [
            GroupHit(group, hit.uid, self.store.user_info(app_id, group, hit.uid) or "", hit.scores)
            for group, hit in found[:users]
        ]
        return hits, live

    def verify(
        self, app_id: str, uid: str, groups: list[str], pixels: BGRImage, *, liveness: bool = False
    ) -> tuple[list[float], float | None]:
        """Cosines of the uid's faces in `groups` against the photo's largest face, best first, and
        that face's liveness score if asked for."""
        indexes = [(g, self.index.group(app_id, g)) for g in groups]
        present = [index for _, index in indexes if index is not None]
        query, live = self.analyzer.probe(pixels, liveness=liveness)
        scores: list[float] = []
        for index in present:
            with index.lock:
                scores.extend(index.user_scores(query, uid))
        if not scores:
            raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not enrolled in {','.join(groups)}")
        return sorted(scores, reverse=True), live

    def reindex(self, batch: int = 64) -> int:
        """Embed again, from the kept crops, every face made by another model than the current one."""
        model = self.analyzer.embedder.name
        done = 0
        while rows := self.store.stale_crops(model, batch):
            for face_id, jpeg in rows:
                aligned = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
                if aligned is None:
                    raise RuntimeError(f"the kept crop of face {face_id} cannot be decoded")
                self.store.set_embedding(face_id, model, self.analyzer.embedder.embed(aligned))
                done += 1
        return done
