"""Exact cosine search, per group, held in memory and updated in place on every write.

Exact search has perfect recall, which approximate indexes (84-92% at 300,000 faces, DESIGN.md)
do not. Its cost is reading every embedding once per search: at 300,000 x 512 floats that is
600 MB and about 45 ms on two cores, bound by memory bandwidth (docs/benchmarks.md).
Each group has its own lock: a search waits only for a write to the same group, and a write holds
the lock only to copy rows in, never while a photo is being embedded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from renlian.store.base import FaceChanges

LOAD_BLOCK = 4096


@dataclass(frozen=True)
class UserHit:
    uid: str
    scores: list[float]  # cosine similarities of this user's best faces, best first


class GroupIndex:
    """One group's embeddings as rows of a matrix with spare capacity; deletes swap in the last row."""

    def __init__(self, dim: int) -> None:
        self.lock = threading.Lock()
        self._vectors = np.zeros((16, dim), np.float32)
        self._face_ids: list[int] = []
        self._uids: list[str] = []
        self._row_of: dict[int, int] = {}
        self._faces_of: dict[str, set[int]] = {}

    def __len__(self) -> int:
        return len(self._face_ids)

    def reserve(self, rows: int) -> None:
        # Grow by half rather than double: the old and new arrays coexist while copying, and at
        # 300,000 x 512 floats each one is 600 MB.
        if rows > len(self._vectors):
            grown = np.zeros((max(rows, len(self._vectors) * 3 // 2), self._vectors.shape[1]), np.float32)
            grown[: len(self._face_ids)] = self._vectors[: len(self._face_ids)]
            self._vectors = grown

    def extend(self, face_ids: list[int], uids: list[str], vectors: NDArray[np.float32]) -> None:
        """Append a block of rows with one copy: how the index is loaded at start-up."""
        start = len(self._face_ids)
        self.reserve(start + len(face_ids))
        self._vectors[start : start + len(face_ids)] = vectors
        self._face_ids.extend(face_ids)
        self._uids.extend(uids)
        self._row_of.update(zip(face_ids, range(start, start + len(face_ids)), strict=True))
        for face_id, uid in zip(face_ids, uids, strict=True):
            self._faces_of.setdefault(uid, set()).add(face_id)

    def add(self, face_id: int, uid: str, vector: NDArray[np.float32]) -> None:
        # A face id names one row: a store that reuses the id of a deleted row must not leave two.
        self.remove(face_id)
        row = len(self._face_ids)
        self.reserve(row + 1)
        self._vectors[row] = vector
        self._face_ids.append(face_id)
        self._uids.append(uid)
        self._row_of[face_id] = row
        self._faces_of.setdefault(uid, set()).add(face_id)

    def remove(self, face_id: int) -> None:
        row = self._row_of.pop(face_id, None)
        if row is None:
            return
        owner = self._uids[row]
        self._faces_of[owner].discard(face_id)
        if not self._faces_of[owner]:
            del self._faces_of[owner]
        last = len(self._face_ids) - 1
        if row != last:
            moved = self._face_ids[last]
            self._vectors[row] = self._vectors[last]
            self._face_ids[row] = moved
            self._uids[row] = self._uids[last]
            self._row_of[moved] = row
        self._face_ids.pop()
        self._uids.pop()

    def search(self, query: NDArray[np.float32], users: int, faces_per_user: int) -> list[UserHit]:
        """The `users` best-matching users, each with up to `faces_per_user` face scores."""
        count = len(self._face_ids)
        if count == 0:
            return []
        scores = self._vectors[:count] @ query
        # A user's rank is their best face's score, so the users whose best faces are among the
        # top rows are exactly the top users; widen the window only if it holds too few of them.
        window = min(count, max(64, users * 8))
        while True:
            rows = np.argpartition(-scores, window - 1)[:window] if window < count else np.arange(count)
            ranked = list(
                dict.fromkeys(self._uids[row] for row in rows[np.argsort(-scores[rows], kind="stable")])
            )
            if len(ranked) >= users or window == count:
                break
            window = min(count, window * 4)
        hits = []
        for uid in ranked[:users]:
            mine = np.sort(scores[[self._row_of[face_id] for face_id in self._faces_of[uid]]])[::-1]
            hits.append(UserHit(uid, [float(v) for v in mine[:faces_per_user]]))
        return hits

    def rows(self) -> dict[int, str]:
        """face_id -> uid of every row: what the index holds, to compare with the store."""
        return dict(zip(self._face_ids, self._uids, strict=True))

    def user_scores(self, query: NDArray[np.float32], uid: str) -> list[float]:
        """Every face score of one user, best first."""
        rows = [self._row_of[face_id] for face_id in self._faces_of.get(uid, ())]
        if not rows:
            return []
        return sorted((float(v) for v in self._vectors[rows] @ query), reverse=True)


class FaceIndex:
    """All groups of all apps, keyed by (app_id, group_id), for one embedding model."""

    def __init__(self, model: str, dim: int) -> None:
        self.model = model
        self.dim = dim
        self._groups: dict[tuple[str, str], GroupIndex] = {}
        self._lock = threading.Lock()

    def group(self, app_id: str, group_id: str) -> GroupIndex | None:
        return self._groups.get((app_id, group_id))

    def _group_for_write(self, app_id: str, group_id: str) -> GroupIndex:
        with self._lock:
            return self._groups.setdefault((app_id, group_id), GroupIndex(self.dim))

    def load(
        self, rows: Iterable[tuple[str, str, int, str, bytes]], sizes: dict[tuple[str, str], int]
    ) -> int:
        """Load (app_id, group_id, face_id, uid, float32 bytes) rows, given each group's row count.

        Each group's matrix is allocated once at its final size and filled in blocks of rows, so
        loading 300,000 faces needs little more memory than the index itself, and few numpy calls.
        """
        for key, size in sizes.items():
            self._group_for_write(*key).reserve(size)
        blocks: dict[tuple[str, str], tuple[list[int], list[str], list[bytes]]] = {}
        loaded = 0

        def flush(key: tuple[str, str]) -> None:
            face_ids, uids, blobs = blocks.pop(key)
            vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), self.dim)
            self._groups[key].extend(face_ids, uids, vectors)

        for app_id, group_id, face_id, uid, blob in rows:
            key = (app_id, group_id)
            face_ids, uids, blobs = blocks.setdefault(key, ([], [], []))
            face_ids.append(face_id)
            uids.append(uid)
            blobs.append(blob)
            loaded += 1
            if len(blobs) == LOAD_BLOCK:
                flush(key)
        for key in list(blocks):
            flush(key)
        return loaded

    def apply(self, changes: FaceChanges) -> None:
        for app_id, group_id, face_id in changes.removed:
            group = self.group(app_id, group_id)
            if group is not None:
                with group.lock:
                    group.remove(face_id)
        for face in changes.added:
            if face.model == self.model:
                group = self._group_for_write(face.app_id, face.group_id)
                with group.lock:
                    group.add(face.face_id, face.uid, face.embedding)

    def contents(self) -> dict[tuple[str, str], dict[int, str]]:
        """(app_id, group_id) -> {face_id: uid} for every non-empty group."""
        found = {}
        for key, group in list(self._groups.items()):
            with group.lock:
                if len(group):
                    found[key] = group.rows()
        return found

    def face_count(self) -> int:
        return sum(len(group) for group in self._groups.values())
