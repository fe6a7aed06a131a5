"""The embedded default store: one SQLite file in the data directory.

Durability: WAL journal with synchronous=FULL, so a write whose transaction committed survives
kill -9 and power loss; every write is one transaction, so nothing is ever half-written.
Concurrency: one writer connection behind a bounded lock, one reader connection per thread (WAL lets
readers run beside the writer). Face writes go through writes.py, numbered in the change feed that
every running index follows, the server's as well as one beside `renlian import`.
Errors: whatever the driver raises (a lock held past the busy timeout, a full disk, a damaged file)
leaves the store as FaceApiError 216300 (v3: 222302), safe to retry, never as 216500.
Files: the data directory is created owner-only and the store file with its -wal and -shm is 0600;
it holds secret keys and face crops (files.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from renlian.errors import ErrorCode, FaceApiError
from renlian.store.base import FIRST_USERS, FeedState
from renlian.store.files import create_private, private_dir, private_file
from renlian.store.reads import FaceReads
from renlian.store.writes import EPOCH, SEQUENCES, FaceWrites, Transaction, feed_state

logger = logging.getLogger("renlian.store")

T = TypeVar("T")

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
    f"""
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
{FIRST_USERS}
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
    """
    -- The change feed (writes.py) replaces the stamps. Face ids are never used twice
    -- (AUTOINCREMENT), so a logged face id names one face for ever; dropping the old table drops its
    -- stamp triggers too.
    CREATE TABLE faces_7 (
        face_id INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id TEXT NOT NULL,
        group_id TEXT NOT NULL,
        uid TEXT NOT NULL,
        image_sha256 TEXT NOT NULL,
        model TEXT NOT NULL,
        embedding BLOB NOT NULL,
        created_at INTEGER,
        UNIQUE (app_id, group_id, uid, image_sha256)
    );
    INSERT INTO faces_7 (face_id, app_id, group_id, uid, image_sha256, model, embedding, created_at)
        SELECT face_id, app_id, group_id, uid, image_sha256, model, embedding, created_at FROM faces;
    DROP TABLE faces;
    ALTER TABLE faces_7 RENAME TO faces;
    CREATE INDEX faces_by_group ON faces (app_id, group_id);
    CREATE INDEX faces_by_model ON faces (model);
    CREATE INDEX faces_by_image ON faces (app_id, image_sha256);
    DROP TABLE face_stamps;
    CREATE TABLE face_sequences (
        app_id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        pruned_through INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE face_changes (
        app_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        request_id TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, seq)
    ) WITHOUT ROWID;
    CREATE INDEX face_changes_by_request ON face_changes (app_id, request_id);
    CREATE INDEX face_changes_by_time ON face_changes (app_id, committed_at);
    CREATE TABLE face_log (
        app_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        face_id INTEGER NOT NULL,
        group_id TEXT NOT NULL,
        added INTEGER NOT NULL,
        PRIMARY KEY (app_id, seq, face_id)
    ) WITHOUT ROWID;
    CREATE INDEX face_log_by_group ON face_log (app_id, group_id, seq);
    CREATE TABLE store_epoch (epoch TEXT NOT NULL);
    INSERT INTO store_epoch VALUES (lower(hex(randomblob(16))));
    -- Every group that holds users is registered (what an index start reads), and none that an app
    -- deletion left behind before deletions went through writes.py.
    INSERT OR IGNORE INTO face_groups (app_id, group_id) SELECT DISTINCT app_id, group_id FROM users;
    DELETE FROM face_groups WHERE app_id NOT IN (SELECT app_id FROM apps UNION SELECT app_id FROM users);
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
    server writes (WAL lets it go on writing meanwhile). The copy gets an epoch of its own
    (writes.py): restored, it is another database than the one that went on changing, and no index
    snapshot taken since the backup is trusted against it."""
    create_private(target)
    try:
        destination = sqlite3.connect(target, isolation_level=None)
        try:
            source.backup(destination)
            has_epoch = destination.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'store_epoch'"
            ).fetchone()
            if has_epoch:
                destination.execute("UPDATE store_epoch SET epoch = ?", (uuid.uuid4().hex,))
        finally:
            destination.close()
    except BaseException:
        target.unlink(missing_ok=True)
        raise


class SQLiteStore(FaceWrites, FaceReads):
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
        # The writer's lock is bounded like SQLite's own: a write queued behind others for longer
        # than the busy timeout answers 216300 rather than wait without end.
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise FaceApiError(ErrorCode.DB_ERROR, "the database is busy (too many writes queued)")
        try:
            with database_errors():
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    yield self._writer
                    self._writer.execute("COMMIT")
                except BaseException:
                    self._rollback()
                    raise
        finally:
            self._write_lock.release()

    def _rollback(self) -> None:
        # Some errors (a full disk, an I/O error) have rolled the transaction back already; a
        # second ROLLBACK would fail and hide the error that matters.
        if not self._writer.in_transaction:
            return
        try:
            self._writer.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("rollback failed")

    # The one write path (writes.py) ---------------------------------------------------------------

    def _transaction(self, body: Callable[[Transaction], T]) -> T:
        """SQLite's single writer serializes every write, so an app needs no lock of its own, and a
        commit that raised has not happened: nothing here is ever tried twice."""
        with self.transaction() as db:
            return body(_SQLiteTransaction(db))

    def listen(self) -> SQLiteListener:
        """A read connection of its own that polls the feed: SQLite announces nothing."""
        return SQLiteListener(self._connect())

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


class _SQLiteTransaction:
    """writes.Transaction on SQLite's writer connection, inside BEGIN IMMEDIATE."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._db.executemany(sql, rows)

    def lock_app(self, app_id: str) -> None:
        """Nothing to take: BEGIN IMMEDIATE already holds the only write lock there is."""

    def log(self, rows: list[tuple[str, int, str, int, bool]]) -> None:
        self._db.executemany(
            "INSERT INTO face_log (app_id, seq, group_id, face_id, added) VALUES (?, ?, ?, ?, ?)", rows
        )

    def announce(self, app_id: str, seq: int) -> None:
        """Nothing to send: the other processes' indexes poll face_sequences."""


class SQLiteListener:
    """ChangeListener on a read connection of its own: it polls, and hears nothing in between."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._closed = threading.Event()

    def state(self) -> FeedState:
        with database_errors():
            return feed_state(
                self._connection.execute(EPOCH).fetchone(), self._connection.execute(SEQUENCES).fetchall()
            )

    def wait(self, timeout: float) -> tuple[str, int] | None:
        self._closed.wait(timeout)
        return None

    def close(self) -> None:
        self._closed.set()
        self._connection.close()
