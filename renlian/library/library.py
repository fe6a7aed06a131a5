"""The face library's operations, in Baidu's terms, over a store and an in-memory index: opening the
index with its change-feed follower (sync.py) and closing them, the writes, the reads, and the entry
to search (search.py) once the index is current. Names are checked in ids.py, faces made in faces.py.

Order of a write: embed the photos (no lock held), commit to the store (one transaction, numbered in
the store's change feed, store/writes.py), then apply the change to the index (sync.py), and only
then answer. So a face is searchable by the very next request after its add returns, and a crash
between commit and answer loses no acknowledged face. No lock of this module is held while the store
commits: the change numbers, not a lock, put the writes into the index in the order they committed,
and the same follower applies the writes of other processes (`renlian import`, other nodes).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from renlian.errors import ErrorCode, FaceApiError
from renlian.library.index import FaceIndex
from renlian.library.loading import load_index
from renlian.library.search import GroupHit, search_groups
from renlian.library.sync import IndexSync
from renlian.store.base import FaceChanges, FaceStore, NewFace, UserRecord
from renlian.vision.analyzer import FaceAnalyzer

MAX_GROUP_FACES = 300_000


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

    def require_groups(self, app_id: str, groups: list[str]) -> int:
        """Check that each group exists in the store (v3's groups exist without faces; 223100 if
        not), and return the app's change number read after: searching with at_least= that number
        then reads an index at least as new as these checks, so a group another node has just made
        is never found to exist yet be searched before its faces arrive."""
        for group in groups:
            self.require_group(app_id, group)
        return self.store.sequence(app_id)

    def require_group(self, app_id: str, group: str, *, registered: bool = True) -> None:
        """223100 / 216618 unless the group exists: registered (v3's groups, which exist empty), or,
        without `registered`, holding users (v2's, which exist while they do)."""
        if registered and not self.store.group_registered(app_id, group):
            raise FaceApiError(ErrorCode.GROUP_NOT_EXIST, f"group {group} does not exist")
        if not registered and not self.store.group_has_users(app_id, group):
            raise FaceApiError(ErrorCode.GROUP_NOT_EXIST, f"group {group} has no users")

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
        """search.search_groups on the index once it holds every acknowledged write of the app, and
        its changes up to `at_least` (a change number from require_groups)."""
        return search_groups(
            self._searching(app_id, at_least),
            self.store,
            app_id,
            groups,
            queries,
            users,
            faces_per_user,
            only_uid,
            require_faces=require_faces,
        )

    def groups(self, app_id: str, start: int, count: int, *, registered: bool = True) -> list[str]:
        """A page of the app's groups: registered ones (v3), or those holding users (v2)."""
        if registered:
            return self.store.registered_groups(app_id, start, count)
        return self.store.groups(app_id, start, count)

    def group_users(
        self, app_id: str, group: str, start: int, count: int, *, registered: bool = True
    ) -> list[UserRecord]:
        """A page of the group's user records, once the group is known to exist (require_group)."""
        self.require_group(app_id, group, registered=registered)
        return self.store.group_users(app_id, group, start, count)

    def user_faces(self, app_id: str, group: str, uid: str) -> list[tuple[str, int | None]]:
        """(photo checksum, enrolment time) of the user's faces in a registered group; 223103 if none."""
        self.require_group(app_id, group)
        faces = self.store.user_faces(app_id, group, uid)
        if not faces:
            raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {group}")
        return faces

    def group_exists_in_index(self, app_id: str, group: str) -> bool:
        """Whether the index holds at least one searchable face of the group."""
        with self._searching(app_id).reading(app_id, group) as index:
            return index is not None and len(index) > 0

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
