"""The stores' reads (faces, apps, tokens, usage), one copy for both stores: SQLite and PostgreSQL
answer them with the same SQL. It is written with SQLite's `?` placeholders; the PostgreSQL store
turns them into its driver's `%s` (postgres.py, `PostgresStore.read`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from renlian.store.base import AppRecord, StoredFace, UserRecord


def embedding_blob(vector: NDArray[np.float32]) -> bytes:
    """How an embedding is kept: little-endian float32."""
    return np.asarray(vector, dtype="<f4").tobytes()


def embedding_vector(data: bytes) -> NDArray[np.float32]:
    return np.frombuffer(data, dtype="<f4")


class FaceReads:
    """The reads of the FaceStore interface, over three queries each store provides."""

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Every row of one query."""
        raise NotImplementedError

    def read_one(self, sql: str, params: Sequence[object] = ()) -> Any:
        """The first row of one query, or None."""
        raise NotImplementedError

    def _stream(self, sql: str, params: Sequence[object] = ()) -> Iterator[Any]:
        """Rows a batch at a time, for the reads that load every face."""
        raise NotImplementedError

    def user(self, app_id: str, uid: str) -> list[UserRecord]:
        rows = self.read(
            "SELECT group_id, uid, user_info FROM users WHERE app_id = ? AND uid = ? ORDER BY id",
            (app_id, uid),
        )
        return [UserRecord(*row) for row in rows]

    def user_info(self, app_id: str, group_id: str, uid: str) -> str | None:
        row = self.read_one(
            "SELECT user_info FROM users WHERE app_id = ? AND group_id = ? AND uid = ?",
            (app_id, group_id, uid),
        )
        return str(row[0]) if row else None

    def groups(self, app_id: str, start: int, count: int) -> list[str]:
        rows = self.read(
            "SELECT group_id FROM users WHERE app_id = ? GROUP BY group_id ORDER BY MIN(id) LIMIT ? OFFSET ?",
            (app_id, count, start),
        )
        return [group for (group,) in rows]

    def group_users(self, app_id: str, group_id: str, start: int, count: int) -> list[UserRecord]:
        rows = self.read(
            "SELECT group_id, uid, user_info FROM users WHERE app_id = ? AND group_id = ? "
            "ORDER BY id LIMIT ? OFFSET ?",
            (app_id, group_id, count, start),
        )
        return [UserRecord(*row) for row in rows]

    def has_face(self, app_id: str, group_id: str, uid: str, image_sha256: str) -> bool:
        row = self.read_one(
            "SELECT 1 FROM faces WHERE app_id = ? AND group_id = ? AND uid = ? AND image_sha256 = ?",
            (app_id, group_id, uid, image_sha256),
        )
        return row is not None

    def registered_groups(self, app_id: str, start: int, count: int) -> list[str]:
        """v3's groups: created by group/add or by an enrolment, in that order, empty ones too."""
        rows = self.read(
            "SELECT group_id FROM face_groups WHERE app_id = ? ORDER BY id LIMIT ? OFFSET ?",
            (app_id, count, start),
        )
        return [group for (group,) in rows]

    def group_registered(self, app_id: str, group_id: str) -> bool:
        row = self.read_one("SELECT 1 FROM face_groups WHERE app_id = ? AND group_id = ?", (app_id, group_id))
        return row is not None

    def user_faces(self, app_id: str, group_id: str, uid: str) -> list[tuple[str, int | None]]:
        """(photo checksum, enrolment time) of a user record's faces, in enrolment order."""
        rows = self.read(
            "SELECT image_sha256, created_at FROM faces WHERE app_id = ? AND group_id = ? AND uid = ? "
            "ORDER BY face_id",
            (app_id, group_id, uid),
        )
        return [(sha256, created) for sha256, created in rows]

    def crop_by_token(self, app_id: str, token: str) -> bytes | None:
        """The aligned crop of an enrolled photo whose checksum starts with `token`."""
        row = self.read_one(
            "SELECT jpeg FROM crops WHERE app_id = ? AND image_sha256 >= ? AND image_sha256 < ? LIMIT 1",
            (app_id, token, token + "g"),
        )
        return bytes(row[0]) if row else None

    def group_has_users(self, app_id: str, group_id: str) -> bool:
        row = self.read_one(
            "SELECT 1 FROM users WHERE app_id = ? AND group_id = ? LIMIT 1", (app_id, group_id)
        )
        return row is not None

    def faces(self, model: str | None = None) -> Iterator[StoredFace]:
        query = "SELECT face_id, app_id, group_id, uid, model, embedding FROM faces"
        rows = self._stream(
            query + (" WHERE model = ?" if model else "") + " ORDER BY face_id", (model,) if model else ()
        )
        for face_id, app_id, group_id, uid, face_model, blob in rows:
            yield StoredFace(face_id, app_id, group_id, uid, face_model, embedding_vector(blob))

    def embeddings(self, model: str) -> Iterator[tuple[str, str, int, str, bytes]]:
        """(app_id, group_id, face_id, uid, float32 bytes) of every face of `model`, in table order
        (a sequential scan: several times faster than reading it in group order)."""
        yield from self._stream(
            "SELECT app_id, group_id, face_id, uid, embedding FROM faces WHERE model = ? ORDER BY face_id",
            (model,),
        )

    def group_embeddings(
        self, model: str, app_id: str, group_id: str
    ) -> Iterator[tuple[str, str, int, str, bytes]]:
        """embeddings() of one group, through the group index."""
        yield from self._stream(
            "SELECT app_id, group_id, face_id, uid, embedding FROM faces "
            "WHERE app_id = ? AND group_id = ? AND model = ? ORDER BY face_id",
            (app_id, group_id, model),
        )

    def group_sizes(self, model: str) -> dict[tuple[str, str], int]:
        rows = self.read(
            "SELECT app_id, group_id, COUNT(*) FROM faces WHERE model = ? GROUP BY app_id, group_id", (model,)
        )
        return {(app_id, group_id): count for app_id, group_id, count in rows}

    def count_stale(self, model: str) -> int:
        """Faces embedded by another model than `model`: invisible to search until reindexed."""
        # Two ranges of faces_by_model rather than `model != ?`, which reads every face's entry: at
        # start-up, where this runs, there are usually none.
        (count,) = self.read_one("SELECT COUNT(*) FROM faces WHERE model < ? OR model > ?", (model, model))
        return int(count)

    def stale_crops(self, model: str, limit: int) -> list[tuple[int, bytes]]:
        rows = self.read(
            "SELECT faces.face_id, crops.jpeg FROM faces JOIN crops USING (app_id, image_sha256) "
            "WHERE faces.model != ? ORDER BY faces.face_id LIMIT ?",
            (model, limit),
        )
        return [(face_id, jpeg) for face_id, jpeg in rows]


APP_COLUMNS = (
    "app_id, name, api_key, secret_key, brain_all_scope, qps_limit, daily_limit, total_limit, closed, "
    "created_at"
)


def app_row(app: AppRecord) -> tuple[object, ...]:
    """An app as the apps table's APP_COLUMNS hold it."""
    return (
        app.app_id,
        app.name,
        app.api_key,
        app.secret_key,
        app.brain_all_scope,
        app.qps_limit,
        app.daily_limit,
        app.total_limit,
        ",".join(sorted(app.closed)),
        app.created_at,
    )


def app_from_row(row: tuple[Any, ...]) -> AppRecord:
    (app_id, name, api_key, secret_key, scope, qps, daily, total, closed, created_at) = row
    return AppRecord(
        app_id=str(app_id),
        name=str(name),
        api_key=str(api_key),
        secret_key=str(secret_key),
        brain_all_scope=bool(scope),
        qps_limit=qps,
        daily_limit=daily,
        total_limit=total,
        closed=frozenset(filter(None, str(closed).split(","))),
        created_at=int(created_at),
    )


# An app's requests (on day, ever); parameters (day, app_id). Also read inside the stores' lease
# transactions (AppStore.lease_usage).
USAGE = (
    "SELECT COALESCE(SUM(CASE WHEN day = ? THEN count END), 0), COALESCE(SUM(count), 0) "
    "FROM usage WHERE app_id = ?"
)


class AppReads:
    """The reads of the AppStore interface, over the face store's queries."""

    _store: FaceReads

    def apps(self) -> list[AppRecord]:
        rows = self._store.read(f"SELECT {APP_COLUMNS} FROM apps ORDER BY created_at, app_id")
        return [app_from_row(row) for row in rows]

    def app(self, app_id: str) -> AppRecord | None:
        row = self._store.read_one(f"SELECT {APP_COLUMNS} FROM apps WHERE app_id = ?", (app_id,))
        return app_from_row(row) if row else None

    def app_by_key(self, api_key: str) -> AppRecord | None:
        row = self._store.read_one(f"SELECT {APP_COLUMNS} FROM apps WHERE api_key = ?", (api_key,))
        return app_from_row(row) if row else None

    def token(self, token_sha256: str, kind: str) -> tuple[str, int] | None:
        row = self._store.read_one(
            "SELECT app_id, expires_at FROM tokens WHERE token_sha256 = ? AND kind = ?",
            (token_sha256, kind),
        )
        return (row[0], int(row[1])) if row else None

    def usage(self, app_id: str, day: str) -> tuple[int, int]:
        row = self._store.read_one(USAGE, (day, app_id))
        return int(row[0]), int(row[1])
