"""The embedded default store: one SQLite file in the data directory.

Durability: WAL journal with synchronous=FULL, so a write whose transaction committed survives
kill -9 and power loss; every write is one transaction, so nothing is ever half-written.
Concurrency: one writer connection behind a lock, one reader connection per thread (WAL lets readers
run beside the writer).
Errors: whatever the driver raises (a lock held past the busy timeout, a full disk, a damaged file)
leaves the store as FaceApiError 216300 (v3: 222302), safe to retry, never as 216500.
Files: the data directory is created owner-only and the store file with its -wal and -shm is 0600;
it holds secret keys and face crops (files.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import FaceChanges, NewFace, StoredFace
from renlian.store.files import create_private, private_dir, private_file
from renlian.store.reads import FaceReads, embedding_blob, embedding_vector

logger = logging.getLogger("renlian.store")

# How long a statement waits for another connection's lock (a backup, `renlian apps`, `renlian
# import` beside the server) before it fails with 216300: SQLite retries until then.
DEFAULT_BUSY_TIMEOUT = 5.0

# What a client is told, by SQLite's primary result code. Fixed phrases and the code's name only:
# the driver's own message can quote SQL text, and the client needs no more to decide to retry.
_DETAILS = {
    sqlite3.SQLITE_BUSY: "the database is busy",
    sqlite3.SQLITE_LOCKED: "the database is busy",
    sqlite3.SQLITE_READONLY: "the database is read-only",
    sqlite3.SQLITE_IOERR: "the database could not be read or written",
    sqlite3.SQLITE_CORRUPT: "the database file is damaged",
    sqlite3.SQLITE_NOTADB: "the database file is damaged",
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_CANTOPEN: "the database file could not be opened",
    sqlite3.SQLITE_CONSTRAINT: "a database constraint failed",
}

# Each entry upgrades the schema by one version (PRAGMA user_version); never edit a shipped entry.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        app_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        uid TEXT NOT NULL,
        user_info TEXT NOT NULL,
        UNIQUE (app_id, group_id, uid)
    );
    CREATE INDEX users_by_uid ON users (app_id, uid);
    CREATE TABLE faces (
        face_id INTEGER PRIMARY KEY,
        app_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        uid TEXT NOT NULL,
        image_sha256 TEXT NOT NULL,
        model TEXT NOT NULL,
        embedding BLOB NOT NULL,
        UNIQUE (app_id, group_id, uid, image_sha256)
    );
    CREATE INDEX faces_by_group ON faces (app_id, group_id);
    CREATE INDEX faces_by_model ON faces (model);
    -- The aligned 112x112 crop of every enrolled photo, kept so that `renlian reindex` can embed it
    -- again with another model; shared by the copies of a face in several groups.
    CREATE TABLE crops (
        app_id TEXT NOT NULL,
        image_sha256 TEXT NOT NULL,
        jpeg BLOB NOT NULL,
        PRIMARY KEY (app_id, image_sha256)
    ) WITHOUT ROWID;
    """,
    """
    CREATE TABLE apps (
        app_id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        api_key TEXT NOT NULL UNIQUE,
        -- Kept in clear: bce-auth-v1 signatures are HMACs keyed by it (docs/security.md).
        secret_key TEXT NOT NULL,
        brain_all_scope INTEGER NOT NULL,
        qps_limit INTEGER,
        daily_limit INTEGER,
        total_limit INTEGER,
        closed TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    -- Only a token's sha256 is kept: a copy of the database does not hand out live tokens.
    CREATE TABLE tokens (
        token_sha256 TEXT PRIMARY KEY,
        app_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        expires_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX tokens_by_app ON tokens (app_id);
    CREATE TABLE usage (
        app_id TEXT NOT NULL,
        day TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (app_id, day)
    ) WITHOUT ROWID;
    """,
    """
    -- Whether a crop is still used is asked after every delete; without this it scans the app.
    CREATE INDEX faces_by_image ON faces (app_id, image_sha256);
    """,
    """
    -- Every token issue purges a few expired rows; without this each purge scans every token.
    CREATE INDEX tokens_by_expiry ON tokens (expires_at);
    """,
    """
    -- v3 groups exist on their own (group/add, group/delete), not only while they hold users; every
    -- group that holds users is one, in order of first enrolment.
    CREATE TABLE face_groups (
        id INTEGER PRIMARY KEY,
        app_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        UNIQUE (app_id, group_id)
    );
    INSERT INTO face_groups (app_id, group_id)
        SELECT app_id, group_id FROM users GROUP BY app_id, group_id ORDER BY MIN(id);
    -- v3 face/getlist's ctime; faces enrolled before this version have none.
    ALTER TABLE faces ADD COLUMN created_at INTEGER;
    """,
    """
    -- A group's change stamp: a new random number whenever any of its faces is added, removed or
    -- changed, in the same transaction, by whichever process writes. The search index's snapshot of
    -- a group is trusted only while the stamp it was taken at is still the group's
    -- (library/snapshot.py). Random rather than counted, so that a store restored from a backup
    -- cannot come back to a stamp that a snapshot of other contents was taken at.
    CREATE TABLE face_stamps (
        app_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        stamp INTEGER NOT NULL,
        PRIMARY KEY (app_id, group_id)
    ) WITHOUT ROWID;
    INSERT INTO face_stamps SELECT DISTINCT app_id, group_id, random() FROM faces;
    CREATE TRIGGER faces_stamp_insert AFTER INSERT ON faces BEGIN
        INSERT INTO face_stamps VALUES (NEW.app_id, NEW.group_id, random())
        ON CONFLICT DO UPDATE SET stamp = random();
    END;
    CREATE TRIGGER faces_stamp_delete AFTER DELETE ON faces BEGIN
        INSERT INTO face_stamps VALUES (OLD.app_id, OLD.group_id, random())
        ON CONFLICT DO UPDATE SET stamp = random();
    END;
    CREATE TRIGGER faces_stamp_update AFTER UPDATE ON faces BEGIN
        INSERT INTO face_stamps VALUES (OLD.app_id, OLD.group_id, random())
        ON CONFLICT DO UPDATE SET stamp = random();
        INSERT INTO face_stamps VALUES (NEW.app_id, NEW.group_id, random())
        ON CONFLICT DO UPDATE SET stamp = random();
    END;
    """,
)


def database_error(exc: sqlite3.Error) -> FaceApiError:
    """216300 for a driver error; the driver's message goes to the server log only."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    name: str = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    logger.warning("database error %s: %s", name, exc)
    detail = _DETAILS.get(code & 0xFF, "database error") if code is not None else "database error"
    return FaceApiError(ErrorCode.DB_ERROR, f"{detail} ({name})")


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn driver errors into 216300. Misuse of the driver (ProgrammingError: a closed connection,
    a wrong parameter count) is a bug of ours, not the database's, and stays what it is."""
    try:
        yield
    except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise
    except sqlite3.Error as exc:
        raise database_error(exc) from exc


def backup_file(source: Path, target: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
    """Copy the store at `source` to a new owner-only file `target` through a read-only connection:
    nothing is migrated or written, so a backup never changes what it copies, and a store of an
    older or newer renlian is copied as it is. FileExistsError if `target` exists."""
    uri = source.resolve().as_uri() + "?mode=ro"
    with database_errors():
        connection = sqlite3.connect(uri, uri=True, timeout=busy_timeout)
        try:
            _copy(connection, target)
        finally:
            connection.close()


def _copy(source: sqlite3.Connection, target: Path) -> None:
    """SQLite's online backup in one step: one read snapshot, so the copy is consistent while the
    server writes (WAL lets it go on writing meanwhile)."""
    create_private(target)
    try:
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)
        finally:
            destination.close()
    except BaseException:
        target.unlink(missing_ok=True)
        raise


class SQLiteStore(FaceReads):
    def __init__(self, path: Path, *, busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        """`busy_timeout`: seconds a statement waits for another connection's lock before 216300."""
        self.path = path
        self.busy_timeout = busy_timeout
        try:
            private_dir(path.parent)
            private_file(path)
        except OSError as exc:
            raise FaceApiError(ErrorCode.DB_ERROR, f"cannot create {path}: {exc.strerror}") from exc
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._writer = self._connect()
        try:
            self._migrate()
        except BaseException:
            self._writer.close()
            raise

    def _connect(self) -> sqlite3.Connection:
        with database_errors():
            # `timeout` is SQLite's busy timeout: a locked database is retried until it passes.
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout
            )
            try:
                # Large pages make loading every embedding at start-up several times faster; they
                # only take effect on a new file, before WAL is switched on.
                connection.execute("PRAGMA page_size = 65536")
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = FULL")
            except BaseException:
                connection.close()
                raise
        return connection

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection (WAL lets it read while the writer writes)."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
            with self._readers_lock:
                self._readers.append(connection)
        return connection

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Every row of one query, on this thread's read connection; driver errors are 216300."""
        with database_errors():
            return self.reader().execute(sql, params).fetchall()

    def read_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first row of one query, or None; driver errors are 216300."""
        with database_errors():
            return self.reader().execute(sql, params).fetchone()

    def _stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[Any]:
        """Rows one at a time, for the reads that load every face: a list would double the memory."""
        with database_errors():
            yield from self.reader().execute(sql, params)

    def _migrate(self) -> None:
        """Apply each pending migration in a transaction of its own, with its version bump."""
        with self._write_lock, database_errors():
            version = self._writer.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise RuntimeError(f"{self.path} has schema {version}, newer than this renlian knows")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                try:
                    self._writer.executescript(
                        f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {number}; COMMIT;"
                    )
                except BaseException:
                    self._rollback()
                    raise

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything in it commits together or not at all. A lock held
        elsewhere past the busy timeout, like every other driver error, leaves as 216300."""
        with self._write_lock, database_errors():
            self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
                self._writer.execute("COMMIT")
            except BaseException:
                self._rollback()
                raise

    def _rollback(self) -> None:
        # Some errors (a full disk, an I/O error) have rolled the transaction back already; a
        # second ROLLBACK would fail and hide the error that matters.
        if not self._writer.in_transaction:
            return
        try:
            self._writer.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("rollback failed")

    # Writes -------------------------------------------------------------------------------------

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
        changes = FaceChanges([], [])
        dropped: list[str] = []
        with self.transaction() as db:
            for group in groups:
                row = db.execute(
                    "SELECT user_info FROM users WHERE app_id = ? AND group_id = ? AND uid = ?",
                    (app_id, group, uid),
                ).fetchone()
                if row is None:
                    self._register_group(db, app_id, group)
                    if require_existing:
                        raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {group}")
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
                    dropped.extend(self._delete_faces(db, app_id, group, uid, changes))
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
                    changes.added.append(self._insert_face(db, app_id, group, uid, face))
            self._drop_orphan_crops(db, app_id, dropped)
            _note_stamps(db, changes)
        return changes

    def _insert_face(
        self, db: sqlite3.Connection, app_id: str, group: str, uid: str, face: NewFace
    ) -> StoredFace:
        db.execute(
            "INSERT OR IGNORE INTO crops (app_id, image_sha256, jpeg) VALUES (?, ?, ?)",
            (app_id, face.image_sha256, face.crop_jpeg),
        )
        try:
            cursor = db.execute(
                "INSERT INTO faces (app_id, group_id, uid, image_sha256, model, embedding, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    app_id,
                    group,
                    uid,
                    face.image_sha256,
                    face.model,
                    embedding_blob(face.embedding),
                    int(time.time()),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise FaceApiError(ErrorCode.IMAGE_EXISTED, f"this photo is already enrolled for {uid}") from exc
        assert cursor.lastrowid is not None
        return StoredFace(cursor.lastrowid, app_id, group, uid, face.model, face.embedding)

    def _delete_faces(
        self, db: sqlite3.Connection, app_id: str, group: str, uid: str, changes: FaceChanges
    ) -> list[str]:
        """Delete a user record's faces, note them in `changes`, and return their photos' checksums."""
        rows = db.execute(
            "DELETE FROM faces WHERE app_id = ? AND group_id = ? AND uid = ? RETURNING face_id, image_sha256",
            (app_id, group, uid),
        ).fetchall()
        changes.removed.extend((app_id, group, face_id) for face_id, _ in rows)
        return [sha256 for _, sha256 in rows]

    def _drop_orphan_crops(self, db: sqlite3.Connection, app_id: str, checksums: list[str]) -> None:
        """Delete the crops of these photos that no face uses any more."""
        db.executemany(
            "DELETE FROM crops WHERE app_id = ? AND image_sha256 = ? AND NOT EXISTS "
            "(SELECT 1 FROM faces WHERE faces.app_id = ? AND faces.image_sha256 = ?)",
            [(app_id, sha256, app_id, sha256) for sha256 in set(checksums)],
        )

    def _groups_of(self, db: sqlite3.Connection, app_id: str, uid: str) -> list[str]:
        rows = db.execute(
            "SELECT group_id FROM users WHERE app_id = ? AND uid = ? ORDER BY id", (app_id, uid)
        )
        return [group for (group,) in rows]

    def _remove_records(
        self, db: sqlite3.Connection, app_id: str, uid: str, groups: list[str]
    ) -> FaceChanges:
        changes = FaceChanges([], [])
        dropped: list[str] = []
        for group in groups:
            dropped.extend(self._delete_faces(db, app_id, group, uid, changes))
            db.execute(
                "DELETE FROM users WHERE app_id = ? AND group_id = ? AND uid = ?", (app_id, group, uid)
            )
        self._drop_orphan_crops(db, app_id, dropped)
        return changes

    def delete_user(self, app_id: str, uid: str, groups: list[str] | None) -> FaceChanges:
        with self.transaction() as db:
            present = self._groups_of(db, app_id, uid)
            targets = present if groups is None else [g for g in groups if g in present]
            if not targets:
                raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not enrolled in those groups")
            return _note_stamps(db, self._remove_records(db, app_id, uid, targets))

    def remove_from_groups(self, app_id: str, uid: str, groups: list[str]) -> FaceChanges:
        with self.transaction() as db:
            present = self._groups_of(db, app_id, uid)
            missing = [g for g in groups if g not in present]
            if missing:
                raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {missing[0]}")
            if not set(present) - set(groups):
                raise FaceApiError(ErrorCode.USER_MUST_BE_IN_ONE_GROUP)
            return _note_stamps(db, self._remove_records(db, app_id, uid, groups))

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
        changes = FaceChanges([], [])
        with self.transaction() as db:
            for target in targets:
                if targets_must_exist and not self._group_registered(db, app_id, target):
                    raise FaceApiError(ErrorCode.DST_GROUP_NOT_EXIST, f"group {target} does not exist")
            row = db.execute(
                "SELECT user_info FROM users WHERE app_id = ? AND group_id = ? AND uid = ?",
                (app_id, source, uid),
            ).fetchone()
            if row is None:
                raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {source}")
            present = self._groups_of(db, app_id, uid)
            for target in targets:
                if target in present:
                    raise FaceApiError(ErrorCode.USER_EXISTS, f"{uid} is already in group {target}")
                self._register_group(db, app_id, target)
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
                    StoredFace(face_id, app_id, target, uid, model, embedding_vector(blob))
                    for face_id, model, blob in copied
                )
            _note_stamps(db, changes)
        return changes

    def _register_group(self, db: sqlite3.Connection, app_id: str, group: str) -> None:
        db.execute("INSERT OR IGNORE INTO face_groups (app_id, group_id) VALUES (?, ?)", (app_id, group))

    def _group_registered(self, db: sqlite3.Connection, app_id: str, group: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM face_groups WHERE app_id = ? AND group_id = ?", (app_id, group)
        ).fetchone()
        return row is not None

    def add_group(self, app_id: str, group: str) -> None:
        with self.transaction() as db:
            if self._group_registered(db, app_id, group):
                raise FaceApiError(ErrorCode.GROUP_EXISTS, f"group {group} exists")
            self._register_group(db, app_id, group)

    def delete_group(self, app_id: str, group: str) -> FaceChanges:
        """The group with every user and face in it."""
        changes = FaceChanges([], [])
        with self.transaction() as db:
            if not self._group_registered(db, app_id, group):
                raise FaceApiError(ErrorCode.NO_USER_IN_GROUP, f"group {group} does not exist")
            rows = db.execute(
                "DELETE FROM faces WHERE app_id = ? AND group_id = ? RETURNING face_id, image_sha256",
                (app_id, group),
            ).fetchall()
            changes.removed.extend((app_id, group, face_id) for face_id, _ in rows)
            db.execute("DELETE FROM users WHERE app_id = ? AND group_id = ?", (app_id, group))
            db.execute("DELETE FROM face_groups WHERE app_id = ? AND group_id = ?", (app_id, group))
            self._drop_orphan_crops(db, app_id, [sha256 for _, sha256 in rows])
            _note_stamps(db, changes)
        return changes

    def delete_face(self, app_id: str, group: str, uid: str, token: str) -> FaceChanges:
        """One face of a user record, named by its token (the start of its photo's checksum); the
        record goes too when it was the last."""
        changes = FaceChanges([], [])
        with self.transaction() as db:
            if not self._group_registered(db, app_id, group):
                raise FaceApiError(ErrorCode.NO_USER_IN_GROUP, f"group {group} does not exist")
            if (
                db.execute(
                    "SELECT 1 FROM users WHERE app_id = ? AND group_id = ? AND uid = ?", (app_id, group, uid)
                ).fetchone()
                is None
            ):
                raise FaceApiError(ErrorCode.USER_NOT_EXIST, f"{uid} is not in group {group}")
            rows = db.execute(
                "DELETE FROM faces WHERE app_id = ? AND group_id = ? AND uid = ? "
                "AND image_sha256 >= ? AND image_sha256 < ? RETURNING face_id, image_sha256",
                (app_id, group, uid, token, token + "g"),
            ).fetchall()
            if not rows:
                raise FaceApiError(ErrorCode.FACE_NOT_EXIST, f"{uid} has no face {token} in group {group}")
            changes.removed.extend((app_id, group, face_id) for face_id, _ in rows)
            left = db.execute(
                "SELECT 1 FROM faces WHERE app_id = ? AND group_id = ? AND uid = ? LIMIT 1",
                (app_id, group, uid),
            ).fetchone()
            if left is None:
                db.execute(
                    "DELETE FROM users WHERE app_id = ? AND group_id = ? AND uid = ?", (app_id, group, uid)
                )
            self._drop_orphan_crops(db, app_id, [sha256 for _, sha256 in rows])
            _note_stamps(db, changes)
        return changes

    def set_embedding(self, face_id: int, model: str, embedding: NDArray[np.float32]) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE faces SET model = ?, embedding = ? WHERE face_id = ?",
                (model, embedding_blob(embedding), face_id),
            )

    # Reads: each goes through read/read_one/_stream, so a driver error is 216300 ------------------

    def snapshot_dir(self) -> Path | None:
        """Where the search index keeps its files: beside the store, owner-only like it."""
        return self.path.with_name(self.path.name + ".index")

    def backup(self, target: str) -> None:
        """A consistent copy of the live database in a new owner-only file, taken with SQLite's
        online backup. FileExistsError if `target` exists."""
        with database_errors():
            _copy(self.reader(), Path(target))

    def close(self) -> None:
        """Close every connection, the readers of other threads too: the last connection to close
        checkpoints the WAL and removes the -wal and -shm files. Call it once nothing reads."""
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for connection in readers:
            connection.close()
        self._writer.close()


def _note_stamps(db: sqlite3.Connection, changes: FaceChanges) -> FaceChanges:
    """Put in `changes` the stamps its groups have now, inside the write's transaction: the stamps
    that an index holding exactly these changes matches. A write that leaves them out only costs
    the groups it touched a rebuild at the next start."""
    keys = {(face.app_id, face.group_id) for face in changes.added}
    keys.update((app_id, group_id) for app_id, group_id, _ in changes.removed)
    for app_id, group_id in keys:
        row = db.execute(
            "SELECT stamp FROM face_stamps WHERE app_id = ? AND group_id = ?", (app_id, group_id)
        ).fetchone()
        if row is not None:
            changes.stamps[app_id, group_id] = row[0]
    return changes
