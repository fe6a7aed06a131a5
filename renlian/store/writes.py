"""Every write to the face library, and the change feed that numbers them: one implementation that
SQLite and PostgreSQL both run, with what differs between them behind `Transaction` (placeholders,
how an app's writes are serialized, how log rows are written, how a commit is announced).

The change feed. Each write runs in one transaction that, under its app's lock, also:

- takes the app's next change number (`face_sequences.seq`): an app's numbers commit in order,
  because the lock is held until commit (PostgreSQL's advisory lock; SQLite's single writer);
- records the change (`face_changes`: number, request id, time) and the faces it added or removed
  (`face_log`, one row per face), so that any running index, in this process or another, can apply
  exactly this write, in order, after any other (library/sync.py);
- announces the number at commit (PostgreSQL's NOTIFY; SQLite's readers poll).

Every write is numbered, even one that changes no face (a new v3 group): the numbers an index has
applied are then the whole story, and a retried write can always be recognized.

Writes that survive ambiguity: each write carries a request id, recorded with its change. When the
answer to a commit is lost (the connection drops after COMMIT was sent) the store runs the write
again; the second attempt finds its own request id and answers with the change that committed,
instead of failing as a duplicate (216616, 223105) for a write that succeeded.

The log is pruned by change number, whole changes at a time (`prune_changes`), and the first number
still logged is kept in `face_sequences.pruned_through`: an index further behind than that rebuilds
the app from the faces instead. `store_epoch` is a random value made with the database, and anew in
every backup copy (sqlite.py): an index made from another database, or from this one before a
restore, never trusts its numbers.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import FaceChanges, FeedState, NewFace, StoredFace
from renlian.store.reads import embedding_blob, embedding_vector

logger = logging.getLogger("renlian.store")

T = TypeVar("T")

# How many changes a log read returns at most: a catch-up after a long absence holds this many.
CHANGES_BATCH = 500

# Every app's latest number, and where its log begins: the poll that proves an index current.
SEQUENCES = "SELECT app_id, seq, pruned_through FROM face_sequences"
EPOCH = "SELECT epoch FROM store_epoch"


class Rows(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Transaction(Protocol):
    """One open write transaction, in the words of the store under it."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> Rows:
        """`sql` with `?` placeholders."""
        ...

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None: ...

    def lock_app(self, app_id: str) -> None:
        """Serialize this app's face writes until commit, whoever else writes to the database."""
        ...

    def log(self, rows: list[tuple[str, int, str, int, bool]]) -> None:
        """Insert (app_id, seq, group_id, face_id, added) rows into face_log."""
        ...

    def announce(self, app_id: str, seq: int) -> None:
        """Tell the other processes, at commit, that the app reached `seq` (or nothing: they poll)."""
        ...


@dataclass(frozen=True)
class _Committed:
    """What a retried write found: it had committed already, as this change number."""

    seq: int


class FaceWrites:
    """The face library's writes and change feed, over a store's `_transaction` and reads."""

    def _transaction(self, body: Callable[[Transaction], T]) -> T:
        """Run `body` in one write transaction, committed when it returns; a store may run it again
        (from the start, in a new transaction) when a try fails in a way another try can cure."""
        raise NotImplementedError

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        raise NotImplementedError

    def read_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        raise NotImplementedError

    # The one write path -----------------------------------------------------------------------------

    def _face_write(self, app_id: str, body: Callable[[Transaction], FaceChanges]) -> FaceChanges:
        """Run one write of the app's face library, numbered and logged in its own transaction
        (module doc). A second try of the same write that finds it committed answers with what it
        did, read back from the log."""
        request_id = uuid.uuid4().hex
        tries = 0

        def attempt(db: Transaction) -> FaceChanges | _Committed:
            nonlocal tries
            tries += 1
            db.lock_app(app_id)
            if tries > 1:
                done = db.execute(
                    "SELECT seq FROM face_changes WHERE app_id = ? AND request_id = ?", (app_id, request_id)
                ).fetchone()
                if done is not None:
                    return _Committed(int(done[0]))
            return _record(db, app_id, body(db), request_id)

        outcome = self._transaction(attempt)
        if isinstance(outcome, _Committed):
            logger.info("a write whose commit was not confirmed had committed, as change %d", outcome.seq)
            return self.changes_since(app_id, outcome.seq - 1, 1)[0]
        return outcome

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
        def body(db: Transaction) -> FaceChanges:
            changes = FaceChanges([], [])
            dropped: list[str] = []
            for group in groups:
                row = db.execute(
                    "SELECT user_info FROM users WHERE app_id = ? AND group_id = ? AND uid = ?",
                    (app_id, group, uid),
                ).fetchone()
                if row is None:
                    if require_existing:
                        raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {group}")
                    _register_group(db, app_id, group)
                    db.execute(
                        "INSERT INTO users (app_id, group_id, uid, user_info) VALUES (?, ?, ?, ?)",
                        (app_id, group, uid, user_info or ""),
                    )
                elif user_info is not None:
                    db.execute(
                        "UPDATE users SET user_info = ? WHERE app_id = ? AND group_id = ? AND uid = ?",
                        (user_info, app_id, group, uid),
                    )
                if replace:
                    dropped.extend(_delete_faces(db, app_id, group, uid, changes))
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM faces WHERE app_id = ? AND group_id = ?", (app_id, group)
                ).fetchone()
                if count + len(faces) > max_group_faces:
                    raise FaceApiError(
                        ErrorCode.FAIL_TO_ADD_USER,
                        f"group {group} holds its maximum of {max_group_faces} faces",
                    )
                for face in faces:
                    if (
                        unique_in_group
                        and db.execute(
                            "SELECT 1 FROM faces WHERE app_id = ? AND group_id = ? AND image_sha256 = ?",
                            (app_id, group, face.image_sha256),
                        ).fetchone()
                    ):
                        raise FaceApiError(ErrorCode.IMAGE_EXISTED, f"this face is already in group {group}")
                    changes.added.append(_insert_face(db, app_id, group, uid, face))
            _drop_orphan_crops(db, app_id, dropped)
            return changes

        return self._face_write(app_id, body)

    def delete_user(self, app_id: str, uid: str, groups: list[str] | None) -> FaceChanges:
        def body(db: Transaction) -> FaceChanges:
            present = _groups_of(db, app_id, uid)
            targets = present if groups is None else [g for g in groups if g in present]
            if not targets:
                raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not enrolled in those groups")
            return _remove_records(db, app_id, uid, targets)

        return self._face_write(app_id, body)

    def remove_from_groups(self, app_id: str, uid: str, groups: list[str]) -> FaceChanges:
        def body(db: Transaction) -> FaceChanges:
            present = _groups_of(db, app_id, uid)
            missing = [g for g in groups if g not in present]
            if missing:
                raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {missing[0]}")
            if not set(present) - set(groups):
                raise FaceApiError(ErrorCode.USER_MUST_BE_IN_ONE_GROUP)
            return _remove_records(db, app_id, uid, groups)

        return self._face_write(app_id, body)

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
        def body(db: Transaction) -> FaceChanges:
            changes = FaceChanges([], [])
            for target in targets:
                if targets_must_exist and not _group_registered(db, app_id, target):
                    raise FaceApiError(ErrorCode.DST_GROUP_NOT_EXIST, f"group {target} does not exist")
            row = db.execute(
                "SELECT user_info FROM users WHERE app_id = ? AND group_id = ? AND uid = ?",
                (app_id, source, uid),
            ).fetchone()
            if row is None:
                raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {source}")
            present = _groups_of(db, app_id, uid)
            for target in targets:
                if target in present:
                    raise FaceApiError(ErrorCode.USER_EXISTS, f"{uid} is already in group {target}")
                _register_group(db, app_id, target)
                (count,) = db.execute(
                    "SELECT (SELECT COUNT(*) FROM faces WHERE app_id = ? AND group_id = ?) + "
                    "(SELECT COUNT(*) FROM faces WHERE app_id = ? AND group_id = ? AND uid = ?)",
                    (app_id, target, app_id, source, uid),
                ).fetchone()
                if count > max_group_faces:
                    raise FaceApiError(
                        ErrorCode.FAIL_TO_ADD_USER,
                        f"group {target} holds its maximum of {max_group_faces} faces",
                    )
                db.execute(
                    "INSERT INTO users (app_id, group_id, uid, user_info) VALUES (?, ?, ?, ?)",
                    (app_id, target, uid, row[0]),
                )
                copied = db.execute(
                    "INSERT INTO faces (app_id, group_id, uid, image_sha256, model, embedding, created_at) "
                    "SELECT app_id, ?, uid, image_sha256, model, embedding, created_at FROM faces "
                    "WHERE app_id = ? AND group_id = ? AND uid = ? ORDER BY face_id "
                    "RETURNING face_id, model, embedding",
                    (target, app_id, source, uid),
                ).fetchall()
                changes.added.extend(
                    StoredFace(int(face_id), app_id, target, uid, model, embedding_vector(blob))
                    for face_id, model, blob in sorted(copied, key=lambda row: int(row[0]))
                )
            return changes

        return self._face_write(app_id, body)

    def add_group(self, app_id: str, group: str) -> None:
        def body(db: Transaction) -> FaceChanges:
            if _group_registered(db, app_id, group):
                raise FaceApiError(ErrorCode.GROUP_EXISTS, f"group {group} exists")
            _register_group(db, app_id, group)
            return FaceChanges([], [])

        self._face_write(app_id, body)

    def delete_group(self, app_id: str, group: str) -> FaceChanges:
        """The group with every user and face in it."""

        def body(db: Transaction) -> FaceChanges:
            if not _group_registered(db, app_id, group):
                raise FaceApiError(ErrorCode.GROUP_NOT_EXIST, f"group {group} does not exist")
            changes = FaceChanges([], [])
            rows = db.execute(
                "DELETE FROM faces WHERE app_id = ? AND group_id = ? RETURNING face_id, image_sha256",
                (app_id, group),
            ).fetchall()
            changes.removed.extend((app_id, group, int(face_id)) for face_id, _ in rows)
            db.execute("DELETE FROM users WHERE app_id = ? AND group_id = ?", (app_id, group))
            db.execute("DELETE FROM face_groups WHERE app_id = ? AND group_id = ?", (app_id, group))
            _drop_orphan_crops(db, app_id, [sha256 for _, sha256 in rows])
            return changes

        return self._face_write(app_id, body)

    def delete_face(self, app_id: str, group: str, uid: str, token: str) -> FaceChanges:
        """One face of a user record, named by its token (the start of its photo's checksum); the
        record goes too when it was the last."""

        def body(db: Transaction) -> FaceChanges:
            if not _group_registered(db, app_id, group):
                raise FaceApiError(ErrorCode.GROUP_NOT_EXIST, f"group {group} does not exist")
            known = db.execute(
                "SELECT 1 FROM users WHERE app_id = ? AND group_id = ? AND uid = ?", (app_id, group, uid)
            ).fetchone()
            if known is None:
                raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {group}")
            rows = db.execute(
                "DELETE FROM faces WHERE app_id = ? AND group_id = ? AND uid = ? "
                "AND image_sha256 >= ? AND image_sha256 < ? RETURNING face_id, image_sha256",
                (app_id, group, uid, token, token + "g"),
            ).fetchall()
            if not rows:
                raise FaceApiError(ErrorCode.FACE_NOT_EXIST, f"{uid} has no face {token} in group {group}")
            left = db.execute(
                "SELECT 1 FROM faces WHERE app_id = ? AND group_id = ? AND uid = ? LIMIT 1",
                (app_id, group, uid),
            ).fetchone()
            if left is None:
                db.execute(
                    "DELETE FROM users WHERE app_id = ? AND group_id = ? AND uid = ?", (app_id, group, uid)
                )
            _drop_orphan_crops(db, app_id, [sha256 for _, sha256 in rows])
            return FaceChanges([], [(app_id, group, int(face_id)) for face_id, _ in rows])

        return self._face_write(app_id, body)

    def set_embedding(self, face_id: int, model: str, embedding: NDArray[np.float32]) -> None:
        """A face embedded again (`renlian reindex`): logged like an add, so every index takes the
        new embedding."""
        row = self.read_one("SELECT app_id FROM faces WHERE face_id = ?", (face_id,))
        if row is None:
            return

        def body(db: Transaction) -> FaceChanges:
            updated = db.execute(
                "UPDATE faces SET model = ?, embedding = ? WHERE face_id = ? RETURNING app_id, group_id, uid",
                (model, embedding_blob(embedding), face_id),
            ).fetchone()
            if updated is None:  # deleted meanwhile
                return FaceChanges([], [])
            app_id, group_id, uid = updated
            return FaceChanges([StoredFace(face_id, app_id, group_id, uid, model, embedding)], [])

        self._face_write(row[0], body)

    def delete_app_library(self, app_id: str, records: Sequence[str]) -> FaceChanges:
        """An app's whole face library, with its rows in the app stores' `records` tables (the app,
        its tokens, its usage), in one transaction: logged as one change, so that every running
        index lets go of its faces. The app's numbers stay: an index that applied them must never
        see them start again."""

        def body(db: Transaction) -> FaceChanges:
            rows = db.execute(
                "DELETE FROM faces WHERE app_id = ? RETURNING group_id, face_id", (app_id,)
            ).fetchall()
            for table in ("users", "crops", "face_groups", *records):
                db.execute(f"DELETE FROM {table} WHERE app_id = ?", (app_id,))
            return FaceChanges([], [(app_id, group_id, int(face_id)) for group_id, face_id in sorted(rows)])

        return self._face_write(app_id, body)

    # The change feed: reads -------------------------------------------------------------------------

    def feed_state(self) -> FeedState:
        """The database's epoch, and every app's latest change number and first logged one."""
        return feed_state(self.read_one(EPOCH), self.read(SEQUENCES))

    def sequence(self, app_id: str) -> int:
        """The app's latest change number: a read that sees a write sees at least its number."""
        row = self.read_one("SELECT seq FROM face_sequences WHERE app_id = ?", (app_id,))
        return int(row[0]) if row else 0

    def changes_since(self, app_id: str, after: int, limit: int = CHANGES_BATCH) -> list[FaceChanges]:
        """The app's changes numbered after `after` (at most `limit`), in order, each with its
        number; empty when none is logged. Where the first is not `after + 1` the log no longer
        covers the gap (pruned). An added face deleted since is left out: a later change removes it."""
        numbers = [
            int(seq)
            for (seq,) in self.read(
                "SELECT seq FROM face_changes WHERE app_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
                (app_id, after, after + limit),
            )
        ]
        if not numbers:
            return []
        found = {seq: FaceChanges([], [], sequence=seq) for seq in numbers}
        for seq, group_id, face_id, added, uid, model, blob in self.read(
            "SELECT l.seq, l.group_id, l.face_id, l.added, f.uid, f.model, f.embedding FROM face_log l "
            "LEFT JOIN faces f ON l.added AND f.face_id = l.face_id AND f.group_id = l.group_id "
            "WHERE l.app_id = ? AND l.seq > ? AND l.seq <= ? ORDER BY l.seq, l.face_id",
            (app_id, after, numbers[-1]),
        ):
            changes = found.get(int(seq))
            if changes is None:
                continue
            if not added:
                changes.removed.append((app_id, group_id, int(face_id)))
            elif blob is not None:
                changes.added.append(
                    StoredFace(int(face_id), app_id, group_id, uid, model, embedding_vector(bytes(blob)))
                )
        return list(found.values())

    def group_changes(self, app_id: str, group_id: str, after: int, through: int) -> FaceChanges:
        """What the app's changes after `after` up to `through` did to one group, as one FaceChanges:
        how a snapshot taken at `after` is brought up to `through`. Face ids are never reused, so
        applying its removals and then its adds gives what applying the changes in order gives; an
        added face deleted since is left out, as in changes_since."""
        changes = FaceChanges([], [], sequence=through)
        for face_id, added, uid, model, blob in self.read(
            "SELECT l.face_id, l.added, f.uid, f.model, f.embedding FROM face_log l "
            "LEFT JOIN faces f ON l.added AND f.face_id = l.face_id AND f.group_id = l.group_id "
            "WHERE l.app_id = ? AND l.group_id = ? AND l.seq > ? AND l.seq <= ? ORDER BY l.seq, l.face_id",
            (app_id, group_id, after, through),
        ):
            if not added:
                changes.removed.append((app_id, group_id, int(face_id)))
            elif blob is not None:
                changes.added.append(
                    StoredFace(int(face_id), app_id, group_id, uid, model, embedding_vector(bytes(blob)))
                )
        return changes

    def registered_keys(self) -> list[tuple[str, str]]:
        """Every (app_id, group_id) that exists: what an index loads at start-up."""
        return [
            (app_id, group_id) for app_id, group_id in self.read("SELECT app_id, group_id FROM face_groups")
        ]

    def prune_changes(self, keep_seconds: float, keep_changes: int) -> int:
        """Forget the logged changes of each app older than `keep_seconds` and not among its last
        `keep_changes`, whole changes at a time; an index further behind rebuilds the app instead.
        Returns how many changes were forgotten."""
        now = int(time.time())
        forgotten = 0
        for app_id, seq, pruned in self.read(SEQUENCES):
            (old,) = self.read_one(
                "SELECT MAX(seq) FROM face_changes WHERE app_id = ? AND committed_at <= ?",
                (app_id, now - keep_seconds),
            )
            cutoff = min(int(old or 0), int(seq) - keep_changes)
            if cutoff <= int(pruned):
                continue

            def body(db: Transaction, app_id: str = app_id, cutoff: int = cutoff) -> int:
                db.lock_app(app_id)
                db.execute("DELETE FROM face_log WHERE app_id = ? AND seq <= ?", (app_id, cutoff))
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM face_changes WHERE app_id = ? AND seq <= ?", (app_id, cutoff)
                ).fetchone()
                db.execute("DELETE FROM face_changes WHERE app_id = ? AND seq <= ?", (app_id, cutoff))
                db.execute(
                    "UPDATE face_sequences SET pruned_through = ? WHERE app_id = ? AND pruned_through < ?",
                    (cutoff, app_id, cutoff),
                )
                return int(count)

            forgotten += self._transaction(body)
        return forgotten


def feed_state(epoch_row: Sequence[Any] | None, rows: Iterable[Sequence[Any]]) -> FeedState:
    """A FeedState from the rows of EPOCH and SEQUENCES."""
    listed = [(str(app_id), int(seq), int(pruned)) for app_id, seq, pruned in rows]
    return FeedState(
        str(epoch_row[0]) if epoch_row else "",
        {app_id: seq for app_id, seq, _ in listed},
        {app_id: pruned for app_id, _, pruned in listed},
    )


def _record(db: Transaction, app_id: str, changes: FaceChanges, request_id: str) -> FaceChanges:
    """Number the write in its app's sequence, record and log it, announce it (module doc)."""
    (seq,) = db.execute(
        "INSERT INTO face_sequences (app_id, seq) VALUES (?, 1) "
        "ON CONFLICT (app_id) DO UPDATE SET seq = face_sequences.seq + 1 RETURNING seq",
        (app_id,),
    ).fetchone()
    seq = int(seq)
    db.execute(
        "INSERT INTO face_changes (app_id, seq, request_id, committed_at) VALUES (?, ?, ?, ?)",
        (app_id, seq, request_id, int(time.time())),
    )
    rows = [(app, seq, group_id, face_id, False) for app, group_id, face_id in changes.removed]
    rows += [(face.app_id, seq, face.group_id, face.face_id, True) for face in changes.added]
    if rows:
        db.log(rows)
    db.announce(app_id, seq)
    return replace(changes, sequence=seq)


def _insert_face(db: Transaction, app_id: str, group: str, uid: str, face: NewFace) -> StoredFace:
    db.execute(
        "INSERT INTO crops (app_id, image_sha256, jpeg) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (app_id, face.image_sha256, face.crop_jpeg),
    )
    row = db.execute(
        "INSERT INTO faces (app_id, group_id, uid, image_sha256, model, embedding, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING face_id",
        (app_id, group, uid, face.image_sha256, face.model, embedding_blob(face.embedding), int(time.time())),
    ).fetchone()
    if row is None:
        raise FaceApiError(ErrorCode.IMAGE_EXISTED, f"this photo is already enrolled for {uid}")
    return StoredFace(int(row[0]), app_id, group, uid, face.model, face.embedding)


def _delete_faces(db: Transaction, app_id: str, group: str, uid: str, changes: FaceChanges) -> list[str]:
    """Delete a user record's faces, note them in `changes`, and return their photos' checksums."""
    rows = db.execute(
        "DELETE FROM faces WHERE app_id = ? AND group_id = ? AND uid = ? RETURNING face_id, image_sha256",
        (app_id, group, uid),
    ).fetchall()
    changes.removed.extend((app_id, group, int(face_id)) for face_id, _ in sorted(rows))
    return [sha256 for _, sha256 in rows]


def _drop_orphan_crops(db: Transaction, app_id: str, checksums: list[str]) -> None:
    """Delete the crops of these photos that no face uses any more."""
    db.executemany(
        "DELETE FROM crops WHERE app_id = ? AND image_sha256 = ? AND NOT EXISTS "
        "(SELECT 1 FROM faces WHERE faces.app_id = ? AND faces.image_sha256 = ?)",
        [(app_id, sha256, app_id, sha256) for sha256 in sorted(set(checksums))],
    )


def _groups_of(db: Transaction, app_id: str, uid: str) -> list[str]:
    rows = db.execute(
        "SELECT group_id FROM users WHERE app_id = ? AND uid = ? ORDER BY id", (app_id, uid)
    ).fetchall()
    return [group for (group,) in rows]


def _remove_records(db: Transaction, app_id: str, uid: str, groups: list[str]) -> FaceChanges:
    changes = FaceChanges([], [])
    dropped: list[str] = []
    for group in groups:
        dropped.extend(_delete_faces(db, app_id, group, uid, changes))
        db.execute("DELETE FROM users WHERE app_id = ? AND group_id = ? AND uid = ?", (app_id, group, uid))
    _drop_orphan_crops(db, app_id, dropped)
    return changes


def _register_group(db: Transaction, app_id: str, group: str) -> None:
    db.execute(
        "INSERT INTO face_groups (app_id, group_id) VALUES (?, ?) ON CONFLICT DO NOTHING", (app_id, group)
    )


def _group_registered(db: Transaction, app_id: str, group: str) -> bool:
    row = db.execute(
        "SELECT 1 FROM face_groups WHERE app_id = ? AND group_id = ?", (app_id, group)
    ).fetchone()
    return row is not None
