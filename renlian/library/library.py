"""The face library's operations, in Baidu v2's terms, over a store and an in-memory index.

Order of a write: embed the photos (no lock held), then, under the app's write lock, commit to the
store (one transaction) and update the index, and only then answer. So a face is searchable by the
very next request after its add returns, and a crash between commit and answer loses no acknowledged
face. The lock makes commit and index update one step: without it, two writes to the same user could
reach the index in the other order than they committed, and a deleted face would stay searchable.
On a store shared by several nodes (PostgreSQL), sync.py also applies the other nodes' writes, under
the same lock.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.index import FaceIndex, UserHit
from renlian.library.sync import IndexSync
from renlian.store.base import ChangeFeed, FaceChanges, FaceStore, NewFace, UserRecord
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


def parse_groups(value: str, field: str = "group_id", max_bytes: int = MAX_GROUP_PARAM_BYTES) -> list[str]:
    """A comma-separated group_id list: each of letters, digits and _, at most 48 characters."""
    if len(value.encode()) > max_bytes:
        raise FaceApiError(
            ErrorCode.INVALID_GROUP_ID, f"{field} is longer than {max_bytes} bytes", field=field
        )
    groups = [group.strip() for group in value.split(",")]
    for group in groups:
        if not _ID.fullmatch(group) or len(group) > MAX_GROUP_CHARS:
            raise FaceApiError(
                ErrorCode.INVALID_GROUP_ID,
                f"each group id must be 1-{MAX_GROUP_CHARS} letters, digits and _ (got {group[:60]!r})",
                field=field,
            )
    return list(dict.fromkeys(groups))


def parse_user_info(value: str) -> str:
    if len(value.encode()) > MAX_USER_INFO_BYTES:
        raise FaceApiError(
            ErrorCode.INVALID_USER_INFO, f"user_info is longer than {MAX_USER_INFO_BYTES} bytes"
        )
    return value


def crop_jpeg(aligned: BGRImage) -> bytes:
    """How an aligned face crop is kept: what `renlian reindex` embeds again, and what a face_token
    resolves to."""
    ok, jpeg = cv2.imencode(".jpg", aligned, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return bytes(jpeg.tobytes())


@dataclass(frozen=True)
class LoadedIndex:
    index: FaceIndex
    # A shared store's change numbers (ChangeFeed), read before the index was: where following
    # the other nodes' writes starts from (sync.py). Empty for any other store.
    numbers: dict[str, int]


def load_index(store: FaceStore, model: str, dim: int, *, search_threads: int | None = None) -> LoadedIndex:
    """Load the search index of the faces `model` embedded. It needs no model loaded, so the server
    does it while the models load, and starts in about the longer of the two times."""
    where = store.snapshot_dir()
    index = FaceIndex(
        model,
        dim,
        where / model if where is not None else None,
        threads=search_threads or min(2, os.cpu_count() or 1),
    )
    numbers = store.sequences() if isinstance(store, ChangeFeed) else {}
    started = time.perf_counter()
    loaded = index.open(store)
    logger.info("face index: %d faces loaded in %.2f s", loaded, time.perf_counter() - started)
    stale = store.count_stale(model)
    if stale:
        logger.warning(
            "%d faces were embedded by another model and cannot be searched; run `renlian reindex`", stale
        )
    return LoadedIndex(index, numbers)


@dataclass(frozen=True)
class GroupHit:
    group_id: str
    uid: str
    user_info: str
    scores: list[float]  # cosines, best first


class FaceLibrary:
    def __init__(
        self,
        store: FaceStore,
        analyzer: FaceAnalyzer,
        max_group_faces: int = MAX_GROUP_FACES,
        search_threads: int | None = None,
        *,
        follow: bool = True,
        poll_seconds: float = 0.2,
        max_lag_seconds: float = 1.0,
        loaded: LoadedIndex | None = None,
    ) -> None:
        """`search_threads`: the first pass's threads (the server's threads per worker; by default
        two, or one on one core). On a store that other nodes write (a ChangeFeed), `follow` keeps
        the index equal to it (sync.py, with its poll interval and its freshness promise); a
        one-off command that only writes passes False. `loaded`: the index, if load_index already
        read it (the server does so while the models load); by default it is loaded here."""
        self.store = store
        self.analyzer = analyzer
        self.max_group_faces = max_group_faces
        self._write_locks: dict[str, threading.Lock] = {}
        self._write_locks_lock = threading.Lock()
        embedder = analyzer.embedder
        if loaded is None:
            loaded = load_index(store, embedder.name, embedder.dim, search_threads=search_threads)
        elif (loaded.index.model, loaded.index.dim) != (embedder.name, embedder.dim):
            raise ValueError(
                f"the index was loaded for {loaded.index.model} ({loaded.index.dim}-d), "
                f"the analyzer embeds with {embedder.name} ({embedder.dim}-d)"
            )
        self.index = loaded.index
        self.sync: IndexSync | None = None
        feed = store if follow and isinstance(store, ChangeFeed) else None
        if feed is not None:
            self.sync = IndexSync(
                self.index,
                store,
                feed,
                self._writing,
                poll_seconds=poll_seconds,
                max_lag_seconds=max_lag_seconds,
            )
            self.sync.start(loaded.numbers)

    def close(self) -> None:
        """Snapshot the groups that changed since start-up, so that the next start loads them
        rather than rebuilding them from the store, and let go of the index's files. Call it once
        nothing searches or writes any more."""
        if self.sync is not None:
            self.sync.stop()
        with self._write_locks_lock:
            locks = list(self._write_locks.values())
        for lock in locks:
            lock.acquire()
        try:
            self.index.save()
        finally:
            for lock in locks:
                lock.release()
        self.index.close()

    @contextmanager
    def _writing(self, app_id: str) -> Iterator[None]:
        """Commit and index update of one write, as one step for the app's library (module doc)."""
        with self._write_locks_lock:
            lock = self._write_locks.setdefault(app_id, threading.Lock())
        with lock:
            yield

    def _committed(self, app_id: str, changes: FaceChanges) -> None:
        """Bring the index up to a write this node committed. The caller holds the app's lock."""
        if self.sync is not None:
            self.sync.wrote(app_id, changes)
        else:
            self.index.apply(changes)

    def _searching(self) -> None:
        """Refuse (216300) to search an index not known to hold every acknowledged write."""
        if self.sync is not None:
            self.sync.check()

    def enrolment_face(self, data: bytes, pixels: BGRImage) -> NewFace:
        """What the library keeps of a photo: its file's checksum (what "the same image" means), its
        largest face's embedding and aligned crop. The pixels can be dropped once this returns."""
        embedding, aligned = self.analyzer.enrolment_face(pixels)
        checksum = hashlib.sha256(data).hexdigest()
        return NewFace(checksum, self.analyzer.embedder.name, embedding, crop_jpeg(aligned))

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
        unique_in_group: bool = False,
    ) -> None:
        with self._writing(app_id):
            self._committed(
                app_id,
                self.store.enrol(
                    app_id,
                    uid,
                    user_info,
                    groups,
                    faces,
                    replace=replace,
                    require_existing=require_existing,
                    max_group_faces=self.max_group_faces,
                    unique_in_group=unique_in_group,
                ),
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
            self._committed(app_id, self.store.delete_user(app_id, uid, groups))

    def copy(self, app_id: str, uid: str, source: str, targets: list[str]) -> None:
        with self._writing(app_id):
            self._committed(app_id, self.store.copy_user(app_id, uid, source, targets, self.max_group_faces))

    def remove_from_groups(self, app_id: str, uid: str, groups: list[str]) -> None:
        with self._writing(app_id):
            self._committed(app_id, self.store.remove_from_groups(app_id, uid, groups))

    def user(self, app_id: str, uid: str) -> list[UserRecord]:
        records = self.store.user(app_id, uid)
        if not records:
            raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not enrolled")
        return records

    def group_exists_in_index(self, app_id: str, group: str) -> bool:
        """Whether the index holds at least one searchable face of the group."""
        self._searching()
        index = self.index.group(app_id, group)
        return index is not None and len(index) > 0

    def search_embeddings(
        self,
        app_id: str,
        groups: list[str],
        queries: NDArray[np.float32],
        users: int,
        faces_per_user: int = 5,
        only_uid: str | None = None,
    ) -> list[list[GroupHit]]:
        """For each probe (a row of `queries`, unit vectors), the best `users` (group, uid) records
        across `groups`, ranked by their best face's score; each group's faces are read once for all
        probes. Groups the index does not hold are skipped (the caller checks existence). With
        `only_uid`, only that uid's faces are compared."""
        self._searching()
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        found: list[list[tuple[str, UserHit]]] = [[] for _ in range(len(queries))]
        for group in groups:
            index = self.index.group(app_id, group)
            if index is None:
                continue
            with index.lock:
                if only_uid is None:
                    per_probe = index.search_many(queries, users, faces_per_user)
                else:
                    per_probe = [
                        [UserHit(only_uid, scores[:faces_per_user])] if scores else []
                        for scores in index.user_scores_many(queries, only_uid)
                    ]
            for hits, more in zip(found, per_probe, strict=True):
                hits.extend((group, hit) for hit in more)
        infos: dict[tuple[str, str], str] = {}
        answer = []
        for hits in found:
            hits.sort(key=lambda item: -item[1].scores[0])
            ranked = []
            for group, hit in hits[:users]:
                if (group, hit.uid) not in infos:
                    infos[group, hit.uid] = self.store.user_info(app_id, group, hit.uid) or ""
                ranked.append(GroupHit(group, hit.uid, infos[group, hit.uid], hit.scores))
            answer.append(ranked)
        return answer

    def identify(
        self, app_id: str, groups: list[str], pixels: BGRImage, users: int, *, liveness: bool = False
    ) -> tuple[list[GroupHit], float | None]:
        """The best `users` (group, uid) records across `groups` for the photo's largest face, and
        that face's liveness score if asked for."""
        for group in groups:
            if not self.group_exists_in_index(app_id, group):
                raise FaceApiError(ErrorCode.NO_USER_IN_GROUP, f"group {group} has no users")
        query, live = self.analyzer.probe(pixels, liveness=liveness)
        return self.search_embeddings(app_id, groups, query[None, :], users)[0], live

    def verify(
        self, app_id: str, uid: str, groups: list[str], pixels: BGRImage, *, liveness: bool = False
    ) -> tuple[list[float], float | None]:
        """Cosines of the uid's faces in `groups` against the photo's largest face, best first, and
        that face's liveness score if asked for."""
        query, live = self.analyzer.probe(pixels, liveness=liveness)
        self._searching()
        scores: list[float] = []
        for group in groups:
            index = self.index.group(app_id, group)
            if index is not None:
                with index.lock:
                    scores.extend(index.user_scores_many(query[None, :], uid)[0])
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

    # v3's explicit groups and single faces ----------------------------------------------------------

    def copy_into_existing(self, app_id: str, uid: str, source: str, target: str) -> None:
        """v3 user/copy: like `copy`, but the target group must already exist."""
        with self._writing(app_id):
            changes = self.store.copy_user(
                app_id, uid, source, [target], self.max_group_faces, targets_must_exist=True
            )
            self._committed(app_id, changes)

    def add_group(self, app_id: str, group: str) -> None:
        self.store.add_group(app_id, group)

    def delete_group(self, app_id: str, group: str) -> None:
        with self._writing(app_id):
            self._committed(app_id, self.store.delete_group(app_id, group))

    def delete_face(self, app_id: str, group: str, uid: str, token: str) -> None:
        with self._writing(app_id):
            self._committed(app_id, self.store.delete_face(app_id, group, uid, token))
