"""The face library's operations, in Baidu v2's terms, over a store and an in-memory index.

Order of a write: embed the photos (no lock held), commit to the store (one transaction, numbered in
the store's change feed, store/writes.py), then apply the change to the index (sync.py), and only
then answer. So a face is searchable by the very next request after its add returns, and a crash
between commit and answer loses no acknowledged face. No lock of this module is held while the store
commits: the change numbers, not a lock, put the writes into the index in the order they committed,
and the same follower applies the writes of other processes (`renlian import`, other nodes).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.index import FaceIndex, UserHit
from renlian.library.sync import IndexSync
from renlian.store.base import FaceChanges, FaceStore, NewFace, UserRecord
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


def load_index(store: FaceStore, model: str, dim: int, *, search_threads: int | None = None) -> FaceIndex:
    """Load the search index of the faces `model` embedded. It needs no model loaded, so the server
    does it while the models load, and starts in about the longer of the two times."""
    where = store.snapshot_dir()
    index = FaceIndex(
        model,
        dim,
        where / model if where is not None else None,
        threads=search_threads or min(2, os.cpu_count() or 1),
    )
    started = time.perf_counter()
    loaded = index.open(store)
    logger.info("face index: %d faces loaded in %.2f s", loaded, time.perf_counter() - started)
    stale = store.count_stale(model)
    if stale:
        logger.warning(
            "%d faces were embedded by another model and cannot be searched; run `renlian reindex`", stale
        )
    return index


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
        searchable: bool = True,
        poll_seconds: float = 0.2,
        max_lag_seconds: float = 1.0,
        lock_timeout: float = 5.0,
        index: FaceIndex | None = None,
    ) -> None:
        """`search_threads`: the first pass's threads (the server's threads per worker; by default
        two, or one on one core). A searchable library keeps an index equal to the store by following
        its change feed (sync.py, with its poll interval, its freshness promise and the bound on any
        wait for an app's write lock); a command that only writes (`renlian import`) passes
        searchable=False and loads no index: a running server picks its writes up from the feed.
        `index`: the index, if load_index already read it (the server does so while the models
        load); by default it is loaded here."""
        self.store = store
        self.analyzer = analyzer
        self.max_group_faces = max_group_faces
        self.sync: IndexSync | None = None
        if not searchable:
            return
        embedder = analyzer.embedder
        if index is None:
            index = load_index(store, embedder.name, embedder.dim, search_threads=search_threads)
        elif (index.model, index.dim) != (embedder.name, embedder.dim):
            raise ValueError(
                f"the index was loaded for {index.model} ({index.dim}-d), "
                f"the analyzer embeds with {embedder.name} ({embedder.dim}-d)"
            )
        self.sync = IndexSync(
            index,
            store,
            poll_seconds=poll_seconds,
            max_lag_seconds=max_lag_seconds,
            lock_timeout=lock_timeout,
        )
        self.sync.start()

    @property
    def index(self) -> FaceIndex:
        if self.sync is None:
            raise RuntimeError("this library was opened to write only; it has no search index")
        return self.sync.index

    def close(self) -> None:
        """Snapshot the groups that changed since start-up, so that the next start loads them
        rather than rebuilding them from the store, and let go of the index's files. Call it once
        nothing searches or writes any more."""
        if self.sync is None:
            return
        self.sync.stop()
        with self.sync.all_writes_held() as unsound:
            self.index.save(unsound)
        self.index.close()

    def _committed(self, app_id: str, changes: FaceChanges) -> None:
        """Bring the index up to a write this process committed, before it is answered."""
        if self.sync is not None:
            self.sync.wrote(app_id, changes)

    def _searching(self, app_id: str, at_least: int = 0) -> FaceIndex:
        """The index, once it is known to hold every acknowledged write of the app (216300 else),
        and the app's changes up to `at_least`."""
        if self.sync is None:
            raise RuntimeError("this library was opened to write only; it has no search index")
        self.sync.reach(app_id, at_least)
        self.sync.check(app_id)
        return self.sync.index

    def existing_groups(self, app_id: str, groups: list[str]) -> int:
        """Check that each group exists in the store (v3's groups exist without faces; 223100 if
        not), and return the app's change number read after: searching with at_least= that number
        then reads an index at least as new as these checks, so a group another node has just made
        is never found to exist yet be searched before its faces arrive."""
        for group in groups:
            if not self.store.group_registered(app_id, group):
                raise FaceApiError(ErrorCode.GROUP_NOT_EXIST, f"group {group} does not exist")
        return self.store.sequence(app_id)

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
        self._committed(app_id, self.store.delete_user(app_id, uid, groups))

    def copy(self, app_id: str, uid: str, source: str, targets: list[str]) -> None:
        self._committed(app_id, self.store.copy_user(app_id, uid, source, targets, self.max_group_faces))

    def remove_from_groups(self, app_id: str, uid: str, groups: list[str]) -> None:
        self._committed(app_id, self.store.remove_from_groups(app_id, uid, groups))

    def user(self, app_id: str, uid: str) -> list[UserRecord]:
        records = self.store.user(app_id, uid)
        if not records:
            raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not enrolled")
        return records

    def group_exists_in_index(self, app_id: str, group: str) -> bool:
        """Whether the index holds at least one searchable face of the group."""
        with self._searching(app_id).reading(app_id, group) as index:
            return index is not None and len(index) > 0

    def search_embeddings(
        self,
        app_id: str,
        groups: list[str],
        queries: NDArray[np.float32],
        users: int,
        faces_per_user: int = 5,
        only_uid: str | None = None,
        *,
        require_faces: bool = False,
        at_least: int = 0,
    ) -> list[list[GroupHit]]:
        """For each probe (a row of `queries`, unit vectors), the best `users` (group, uid) records
        across `groups`, ranked by their best face's score; each group's faces are read once for all
        probes. Groups the index does not hold are skipped (the caller checks existence), or with
        `require_faces` refused (216618) as they are when they hold no face. With `only_uid`, only
        that uid's faces are compared. `at_least`: a change number of the app the index must have
        applied first (existing_groups)."""
        searched = self._searching(app_id, at_least)
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        found: list[list[tuple[str, UserHit]]] = [[] for _ in range(len(queries))]
        for group in groups:
            with searched.reading(app_id, group) as index:
                # Checked on the version searched: a check on an earlier one could pass for a
                # group that another node empties before the search reads it.
                if require_faces and (index is None or len(index) == 0):
                    raise FaceApiError(ErrorCode.GROUP_NOT_EXIST, f"group {group} has no users")
                if index is None:
                    continue
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
        changes = self.store.copy_user(
            app_id, uid, source, [target], self.max_group_faces, targets_must_exist=True
        )
        self._committed(app_id, changes)

    def add_group(self, app_id: str, group: str) -> None:
        self.store.add_group(app_id, group)  # a numbered change that moves no face: nothing to apply

    def delete_group(self, app_id: str, group: str) -> None:
        self._committed(app_id, self.store.delete_group(app_id, group))

    def delete_face(self, app_id: str, group: str, uid: str, token: str) -> None:
        self._committed(app_id, self.store.delete_face(app_id, group, uid, token))
