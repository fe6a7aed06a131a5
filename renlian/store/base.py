"""The store's interface and the records it keeps.

The unit of the face library is Baidu v2's: a user record is one uid in one group of one app, with
its user_info and its faces; the same uid in two groups is two records (group/adduser copies one).
Every row carries its app_id, so tenants never share a row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

# The first schema's users table after its key, to the line that opens the faces table: the same in
# both dialects, so both stores' first migrations (sqlite.py, postgres.py) take it from here, and the
# SQL each runs is the text it always ran.
FIRST_USERS = """        app_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        uid TEXT NOT NULL,
        user_info TEXT NOT NULL,
        UNIQUE (app_id, group_id, uid)
    );
    CREATE INDEX users_by_uid ON users (app_id, uid);
    CREATE TABLE faces ("""


@dataclass(frozen=True)
class NewFace:
    """A face about to be enrolled: what identifies the photo, its embedding, and its aligned crop."""

    image_sha256: str
    model: str
    embedding: NDArray[np.float32]
    crop_jpeg: bytes


@dataclass(frozen=True)
class StoredFace:
    face_id: int
    app_id: str
    group_id: str
    uid: str
    model: str
    embedding: NDArray[np.float32]


@dataclass(frozen=True)
class UserRecord:
    group_id: str
    uid: str
    user_info: str


@dataclass(frozen=True)
class FaceChanges:
    """What a write did, so the in-memory index can follow it exactly."""

    added: list[StoredFace]
    removed: list[tuple[str, str, int]]  # (app_id, group_id, face_id)
    # The write's number in its app's change sequence (store/writes.py); None until numbered.
    sequence: int | None = None


@dataclass(frozen=True)
class FeedState:
    """Where the store's change feed stands (store/writes.py): the database's epoch, each app's
    latest change number, and the last number each app's log no longer holds."""

    epoch: str
    numbers: dict[str, int] = field(default_factory=dict)
    pruned: dict[str, int] = field(default_factory=dict)


class FaceStore(Protocol):
    def enrol(
        self,
        app_id: str,
        uid: str,
        user_info: str | None,
        groups: list[str],
        faces: list[NewFace],
        *,
        replace: bool,
        require_existing: bool,
        max_group_faces: int,
        unique_in_group: bool = False,
    ) -> FaceChanges:
        """Add faces to (app, group, uid) records, creating them as needed, in one transaction.

        replace: drop the records' existing faces first. require_existing: every group must already
        hold the uid (else 216611). An appended photo already enrolled for the record is 216616; with
        unique_in_group (v3), so is one enrolled for any user of the group.
        Errors are FaceApiError with Baidu's codes, raised before anything is written.
        """
        ...

    def delete_user(self, app_id: str, uid: str, groups: list[str] | None) -> FaceChanges: ...

    def copy_user(
        self,
        app_id: str,
        uid: str,
        source: str,
        targets: list[str],
        max_group_faces: int,
        *,
        targets_must_exist: bool = False,
    ) -> FaceChanges:
        """Copy the (app, source, uid) record with its faces into each target group; 216617 if a
        target would hold more than `max_group_faces` faces; with `targets_must_exist` (v3), a target
        that is not a group is 223111."""
        ...

    def add_group(self, app_id: str, group: str) -> None: ...

    def delete_group(self, app_id: str, group: str) -> FaceChanges: ...

    def delete_face(self, app_id: str, group: str, uid: str, token: str) -> FaceChanges: ...

    def registered_groups(self, app_id: str, start: int, count: int) -> list[str]: ...

    def group_registered(self, app_id: str, group_id: str) -> bool: ...

    def user_faces(self, app_id: str, group_id: str, uid: str) -> list[tuple[str, int | None]]: ...

    def crop_by_token(self, app_id: str, token: str) -> bytes | None: ...

    def remove_from_groups(self, app_id: str, uid: str, groups: list[str]) -> FaceChanges: ...

    def user(self, app_id: str, uid: str) -> list[UserRecord]: ...

    def user_info(self, app_id: str, group_id: str, uid: str) -> str | None: ...

    def groups(self, app_id: str, start: int, count: int) -> list[str]: ...

    def group_has_users(self, app_id: str, group_id: str) -> bool: ...

    def has_face(self, app_id: str, group_id: str, uid: str, image_sha256: str) -> bool: ...

    def count_stale(self, model: str) -> int: ...

    def group_users(self, app_id: str, group_id: str, start: int, count: int) -> list[UserRecord]: ...

    def faces(self, model: str | None = None) -> Iterator[StoredFace]: ...

    def embeddings(self, model: str) -> Iterator[tuple[str, str, int, str, bytes]]:
        """(app_id, group_id, face_id, uid, float32 bytes) of every face of `model`: what the search
        index loads at start-up."""
        ...

    def group_sizes(self, model: str) -> dict[tuple[str, str], int]:
        """How many faces of `model` each (app_id, group_id) holds."""
        ...

    def group_embeddings(
        self, model: str, app_id: str, group_id: str
    ) -> Iterator[tuple[str, str, int, str, bytes]]:
        """embeddings() of one group: what the index reads to rebuild a group whose snapshot is
        stale."""
        ...

    def registered_keys(self) -> list[tuple[str, str]]:
        """Every (app_id, group_id) that exists."""
        ...

    def snapshot_dir(self) -> Path | None:
        """Where the search index may keep its files (None: nowhere, it rebuilds at every start)."""
        ...

    def stale_crops(self, model: str, limit: int) -> list[tuple[int, bytes]]: ...

    def set_embedding(self, face_id: int, model: str, embedding: NDArray[np.float32]) -> None: ...

    def backup(self, target: str) -> None: ...

    def close(self) -> None: ...

    # The change feed (store/writes.py) ---------------------------------------------------------------

    def feed_state(self) -> FeedState: ...

    def sequence(self, app_id: str) -> int: ...

    def changes_since(self, app_id: str, after: int, limit: int = ...) -> list[FaceChanges]:
        """The app's changes numbered after `after` (at most `limit`), in order, with their numbers."""
        ...

    def group_changes(self, app_id: str, group_id: str, after: int, through: int) -> FaceChanges: ...

    def prune_changes(self, keep_seconds: float, keep_changes: int) -> int: ...

    def listen(self) -> ChangeListener:
        """A connection of its own that polls the feed, and hears announcements where the store
        makes them."""
        ...


class ChangeListener(Protocol):
    def state(self) -> FeedState:
        """FaceStore.feed_state(), read on this listener's own connection."""
        ...

    def wait(self, timeout: float) -> tuple[str, int] | None:
        """The next announcement (app_id, change number), or None after `timeout` seconds."""
        ...

    def close(self) -> None: ...


CAPABILITIES = ("detect", "match", "identify", "verify", "faceset")


@dataclass(frozen=True)
class AppRecord:
    """An app: its credentials, what its tokens' scope says, its quotas and its closed capabilities."""

    app_id: str
    name: str
    api_key: str
    secret_key: str
    brain_all_scope: bool
    qps_limit: int | None
    daily_limit: int | None
    total_limit: int | None
    closed: frozenset[str]
    created_at: int


class AppStore(Protocol):
    def create_app(self, app: AppRecord) -> None: ...

    def apps(self) -> list[AppRecord]: ...

    def app(self, app_id: str) -> AppRecord | None: ...

    def app_by_key(self, api_key: str) -> AppRecord | None: ...

    def update_app(self, app: AppRecord) -> None:
        """Save every field but app_id; a new secret_key also revokes the app's tokens."""
        ...

    def delete_app(self, app_id: str) -> None:
        """The app, its tokens, its usage and its whole face library."""
        ...

    def token(self, token_sha256: str, kind: str) -> tuple[str, int] | None:
        """(app_id, expires_at) of a token row (issued before tokens were MACs) not yet revoked."""
        ...

    def purge_tokens(self) -> int:
        """Delete the token rows that expired over a day ago; how many went."""
        ...

    def add_usage(self, counts: dict[tuple[str, str], int], batch_id: str | None = None) -> None:
        """Add request counts per (app_id, day), once per `batch_id` however often it is retried."""
        ...

    def usage(self, app_id: str, day: str) -> tuple[int, int]:
        """(requests on that day, requests ever)."""
        ...

    def lease_usage(self, app_id: str, day: str, size: Callable[[int, int], int]) -> int:
        """Add `size(requests on that day, requests ever)` to the app's count of that day and return
        it, in one transaction that no other lease of the app overlaps, on any node: each lease is
        sized from the counts that the one before it committed. A FaceApiError from `size` rolls the
        transaction back and is raised."""
        ...
