"""Exact cosine search, per group, updated in place on every write: an int8 first pass with a bound,
then a float32 re-rank of every row the bound cannot rule out.

Exact search has perfect recall, which approximate indexes (84-92% at 300,000 faces, DESIGN.md) do
not. Reading 300,000 x 512 float32 per probe (600 MB) is what made it slow; here each probe reads the
int8 codes (150 MB) and a few hundred float32 rows, and the answer is the brute-force float32 answer
by construction (bound.py; docs/library.md):

1. every row's first-pass score a, with |exact - a| <= bound(row) (scan.py);
2. the exact scores of the rows with the best a (or of each user's best row by a, when those hold
   too few users); the `users`-th best of those users' best scores is a floor that the true
   `users`-th best user reaches too;
3. the exact scores of every row whose a + bound reaches the floor: no other row can be any top
   user's best face, so ranking these gives the brute-force ranking. A top user's face scores are
   found the same way among its own rows.

Users rank by their best face's exact score, ties by the lower face id. The codes live in memory in
blocks (the first 1,024 rows, then doubling up to 32,768), stored transposed as the integer product
wants them; the float32 rows live in a file (rows.py). Each group has its own lock: a search waits
only for a write to the same group, and a write holds it only to copy rows in.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from renlian.library import snapshot
from renlian.library.bound import (
    QueryCode,
    RowCodes,
    code_query,
    code_rows,
    exact_scores,
    float32_bound,
    norm_up,
)
from renlian.library.rows import RowFile
from renlian.library.scan import FirstPass, Probes, offset_codes
from renlian.store.base import FaceChanges, FaceStore, FeedState
from renlian.store.files import private_dir

logger = logging.getLogger("renlian.library")

LOAD_BLOCK = 4096
FIRST_BLOCK = 1024
MAX_BLOCK = 32768
# Rows scored exactly at once: bounds the float64 copy when the bound rules out little.
EXACT_CHUNK = 8192
# Groups of at most this many rows skip the int8 first pass: their float32 rows are read whole and
# multiplied by the probes (one BLAS product), with a bound a thousand times tighter, then re-ranked
# the same way. Below this size that costs less than the first pass's fixed cost
# (docs/benchmarks.md, where the two cross).
DIRECT_ROWS = 2500
# float32 products of norms up to this never overflow (bound.float32_bound).
DIRECT_NORM_PRODUCT = 2.0**100
SNAPSHOT_FORMAT = 3
# Beside the snapshots: what the last clean shutdown vouched for (FaceIndex.save).
VOUCHERS = "vouchers.json"

# Per-row arrays, grown with the blocks and moved with their row. `_owner` is the row's user, as an
# index into `_names`: no Python object per row, so a snapshot of 300,000 rows loads in a blink.
_STATS = ("_scale", "_norm", "_residual", "_owner")


@dataclass(frozen=True)
class UserHit:
    uid: str
    scores: list[float]  # exact cosine similarities of this user's best faces, best first


@dataclass(frozen=True)
class _Pass:
    """One probe's first-pass score of every row, and how far each may be from its exact score."""

    approx: NDArray[np.float32]
    tops: NDArray[np.int64]  # rows among which the first pass's best are (unordered)
    bound: Callable[[NDArray[np.intp]], NDArray[np.float64]]
    widest: float  # the bound of any row of the group
    # The bound is so tight (float32 rows) that the first rows holding the users asked for give
    # step 2 a floor within twice the bound of what more rows would: only those are scored exactly
    # there (at 1,000 faces, scoring the usual 64 cost more than the rest of the search).
    tight: bool


def _below(value: float) -> np.float32:
    """The largest float32 not above `value`: a float32 comparison against it drops nothing."""
    rounded = np.float32(value)
    return rounded if float(rounded) <= value else np.nextafter(rounded, np.float32(-np.inf))


def _int8_bound(
    code: QueryCode, norm: NDArray[np.float32], residual: NDArray[np.float32], rows: NDArray[np.intp]
) -> NDArray[np.float64]:
    return code.bound(norm[rows], residual[rows])


def _float32_bound(
    query_norm: float, norm: NDArray[np.float32], dim: int, rows: NDArray[np.intp]
) -> NDArray[np.float64]:
    return float32_bound(norm[rows], query_norm, dim)


class _Exact:
    """One probe's exact scores, each row's computed once per search however often it is asked for."""

    def __init__(
        self, group: GroupIndex, query: NDArray[np.float32], vectors: NDArray[np.float32] | None
    ) -> None:
        self._group, self._query, self._vectors = group, query, vectors
        self._known: dict[int, float] = {}

    def __call__(self, rows: NDArray[np.intp]) -> dict[int, float]:
        """row -> exact score of each of `rows`."""
        listed = rows.tolist()
        fresh = [row for row in listed if row not in self._known]
        if fresh:
            scores = self._group._exact(np.array(fresh, np.intp), self._query, self._vectors)
            self._known.update(zip(fresh, scores.tolist(), strict=True))
        return {row: self._known[row] for row in listed}


class GroupIndex:
    """One group's rows: codes in memory, float32 in a file; deletes move the last row in."""

    def __init__(self, dim: int, first_pass: FirstPass | None = None, rows: RowFile | None = None) -> None:
        self.lock = threading.Lock()
        self.dim = dim
        self._pass = first_pass or shared_first_pass()
        self._file = rows or RowFile(dim)
        self._blocks: list[NDArray[np.uint8]] = []  # codes + 128, block size x dim
        self._starts = [0]  # each block's first row, then the end of the last block
        self._scale = np.zeros(0, np.float32)
        self._norm = np.zeros(0, np.float32)
        self._residual = np.zeros(0, np.float32)
        self._owner = np.zeros(0, np.int32)
        # Only ever raised: still upper bounds after the row that set them is gone.
        self._norm_max = 0.0
        self._residual_max = 0.0
        self._face_ids: list[int] = []
        self._row_of: dict[int, int] = {}
        # Every uid seen since the group was loaded (the snapshot keeps only those still present).
        self._names: list[str] = []
        self._number: dict[str, int] = {}
        # Whether the snapshot on disk (meta_path) holds exactly these rows, and its id.
        self.saved = False
        self.meta_path: Path | None = None
        self.snapshot_id: str | None = None
        # How many rows that snapshot describes, while the rows file still holds them as it says
        # (rows appended since leave it true, for the change number it names); None: no snapshot.
        self.snapshot_rows: int | None = None
        # Searches in this group now (FaceIndex.reading), and whether it was replaced: its files
        # are closed only once the last of them ends.
        self.readers = 0
        self.retired = False

    def __len__(self) -> int:
        return len(self._face_ids)

    # Writes ---------------------------------------------------------------------------------------

    def _changing(self, row: int) -> None:
        """Before a change to the rows file from `row` on: the snapshot no longer holds these rows,
        and it goes if it describes any row changed. A snapshot of the rows before `row` stays: with
        the changes logged since its number, a start after a crash still restores from it."""
        if self.snapshot_rows is not None and row < self.snapshot_rows and self.meta_path is not None:
            self.meta_path.unlink(missing_ok=True)
            self.snapshot_rows = None
        self.saved = False

    def _reserve(self, rows: int) -> None:
        while self._starts[-1] < rows:
            size = min(MAX_BLOCK, FIRST_BLOCK << len(self._blocks))
            self._blocks.append(np.zeros((size, self.dim), np.uint8))
            self._starts.append(self._starts[-1] + size)
        capacity = self._starts[-1]
        for name in _STATS:
            old = getattr(self, name)
            if len(old) < capacity:
                grown = np.zeros(capacity, old.dtype)
                grown[: len(old)] = old
                setattr(self, name, grown)

    def _locate(self, row: int) -> tuple[int, int]:
        block = bisect.bisect_right(self._starts, row) - 1
        return block, row - self._starts[block]

    def _put(self, start: int, coded: RowCodes) -> None:
        end = start + len(coded.scale)
        self._scale[start:end] = coded.scale
        self._norm[start:end] = coded.norm
        self._residual[start:end] = coded.residual
        row = start
        while row < end:
            block, offset = self._locate(row)
            stop = min(end, self._starts[block + 1])
            self._blocks[block][offset : offset + stop - row] = offset_codes(
                coded.codes[row - start : stop - start]
            )
            row = stop
        if end > start:
            self._norm_max = max(self._norm_max, float(coded.norm.max()))
            self._residual_max = max(self._residual_max, float(coded.residual.max()))

    def extend(self, face_ids: list[int], uids: list[str], vectors: NDArray[np.float32]) -> None:
        """Append a block of rows with one write: how a group is built at start-up."""
        start = len(self._face_ids)
        self._changing(start)
        self._reserve(start + len(face_ids))
        self._file.write(start, vectors)
        self._put(start, code_rows(vectors))
        self._face_ids.extend(face_ids)
        self._row_of.update(zip(face_ids, range(start, start + len(face_ids)), strict=True))
        self._owner[start : start + len(uids)] = [self._number_of(uid) for uid in uids]

    def _number_of(self, uid: str) -> int:
        number = self._number.get(uid)
        if number is None:
            number = self._number[uid] = len(self._names)
            self._names.append(uid)
        return number

    def _rows_of(self, uid: str) -> NDArray[np.intp]:
        """A user's rows: one comparison per row (0.1 ms at 300,000), no per-user sets to build."""
        number = self._number.get(uid)
        if number is None:
            return np.zeros(0, np.intp)
        return np.flatnonzero(self._owner[: len(self._face_ids)] == number)

    def add(self, face_id: int, uid: str, vector: NDArray[np.float32]) -> None:
        # A face id names one row: a store that reuses the id of a deleted row must not leave two.
        self.remove(face_id)
        self.extend([face_id], [uid], np.asarray(vector, np.float32)[None, :])

    def remove(self, face_id: int) -> None:
        row = self._row_of.pop(face_id, None)
        if row is None:
            return
        self._changing(row)
        last = len(self._face_ids) - 1
        if row != last:
            self._file.move(last, row)
            (to_block, to_column), (from_block, from_column) = self._locate(row), self._locate(last)
            self._blocks[to_block][to_column] = self._blocks[from_block][from_column]
            for name in _STATS:
                getattr(self, name)[row] = getattr(self, name)[last]
            moved = self._face_ids[last]
            self._face_ids[row] = moved
            self._row_of[moved] = row
        # The freed row is still scored with its block: scale 0 scores it 0, never a stale face.
        block, column = self._locate(last)
        self._blocks[block][column] = 0
        self._scale[last] = 0
        self._face_ids.pop()

    # Reads ----------------------------------------------------------------------------------------

    def search(self, query: NDArray[np.float32], users: int, faces_per_user: int) -> list[UserHit]:
        """The `users` best-matching users, each with up to `faces_per_user` face scores."""
        return self.search_many(np.asarray(query, np.float32)[None, :], users, faces_per_user)[0]

    def search_many(
        self, queries: NDArray[np.float32], users: int, faces_per_user: int
    ) -> list[list[UserHit]]:
        """search() for each row of `queries`, all probes at once: one product per block of codes for
        every probe (or, for a small group, one product of its float32 rows); then each probe's
        re-rank."""
        count = len(self._face_ids)
        if count == 0:
            return [[] for _ in queries]
        window = min(count, max(64, users * 8))
        norms = [norm_up(query) for query in queries]
        vectors = None
        if count <= DIRECT_ROWS and self._norm_max * max(norms) < DIRECT_NORM_PRODUCT:
            vectors = self._file.head(count)
            passes = self._direct_pass(vectors, queries, norms, window)
        else:
            passes = self._int8_pass(queries, window)
        exacts = [_Exact(self, query, vectors) for query in queries]
        best = [self._best_users(found, exact, users) for found, exact in zip(passes, exacts, strict=True)]
        # The rows of every user answered to any probe, found with one pass over the owners.
        theirs = np.flatnonzero(self._owned_by({owner for owners in best for owner in owners}, count))
        return [
            [
                UserHit(
                    self._names[owner],
                    self._best_faces(found, exact, theirs[self._owner[theirs] == owner], faces_per_user),
                )
                for owner in owners
            ]
            for found, exact, owners in zip(passes, exacts, best, strict=True)
        ]

    def _int8_pass(self, queries: NDArray[np.float32], window: int) -> list[_Pass]:
        count = len(self._face_ids)
        coded = [code_query(query) for query in queries]
        probes = Probes([code.codes for code in coded], [code.step for code in coded])
        approx = np.empty((len(coded), count), np.float32)
        tops: list[NDArray[np.int64]] = []
        for block, codes in enumerate(self._blocks):
            start, capacity_end = self._starts[block], self._starts[block + 1]
            if start >= count:
                break
            end = min(count, capacity_end)
            found, top = self._pass.scores(probes, codes, self._scale[start:capacity_end], window)
            approx[:, start:end] = found[:, : end - start]
            tops.extend(np.where(top < end - start, top + start, -1))
        norm_max = np.array([self._norm_max], np.float32)
        residual_max = np.array([self._residual_max], np.float32)
        passes = []
        for probe, code in enumerate(coded):
            rows = np.concatenate(tops[probe :: len(coded)])
            passes.append(
                _Pass(
                    approx[probe],
                    rows[rows >= 0],
                    partial(_int8_bound, code, self._norm, self._residual),
                    float(code.bound(norm_max, residual_max)[0]),
                    tight=False,
                )
            )
        return passes

    def _direct_pass(
        self, vectors: NDArray[np.float32], queries: NDArray[np.float32], norms: list[float], window: int
    ) -> list[_Pass]:
        # numpy's own loop rather than BLAS: OpenBLAS wakes its threads even for a product this
        # small, and on a busy machine waiting for them costs far more than the product.
        approx = np.einsum("pj,ij->pi", np.asarray(queries, np.float32), vectors)
        norm_max = np.array([self._norm_max], np.float32)
        passes = []
        for probe, norm in enumerate(norms):
            scores = approx[probe]
            tops = (
                np.argpartition(-scores, window - 1)[:window]
                if window < len(scores)
                else np.arange(len(scores))
            )
            passes.append(
                _Pass(
                    scores,
                    tops.astype(np.int64),
                    partial(_float32_bound, norm, self._norm, self.dim),
                    float(float32_bound(norm_max, norm, self.dim)[0]),
                    tight=True,
                )
            )
        return passes

    def _best_users(self, found: _Pass, exact: _Exact, users: int) -> list[int]:
        """The owners of the `users` best-matching users, best first."""
        # Step 2 of the module doc: the rows with the best first-pass scores (each block's best,
        # from the first pass). When they hold too few distinct users (one user's many near-copies,
        # or a group of fewer users than asked for), each user's best row by the first pass instead.
        approx = found.approx
        window = max(64, users * 8)
        rows = found.tops[np.argsort(-approx[found.tops], kind="stable")[:window]]
        complete = False
        _, firsts = np.unique(self._owner[rows], return_index=True)
        if len(firsts) < users:
            rows, complete = self._row_per_user(approx, window)
        elif found.tight:
            rows = rows[: np.partition(firsts, users - 1)[users - 1] + 1]
        scored = exact(rows)
        floor = self._floor(scored, users, complete)
        # Step 3: every row that the bound cannot rule out.
        scored.update(exact(self._reaching(found, None, floor)))
        ranked = sorted(scored, key=lambda row: (-scored[row], self._face_ids[row]))
        owners = self._owner[np.array(ranked, np.intp)].tolist()
        return list(dict.fromkeys(owners))[:users]

    def _owned_by(self, owners: set[int], count: int) -> NDArray[np.bool_]:
        """Which of the first `count` rows belong to one of `owners` (a table lookup: numpy's isin
        sorts a 300,000-row group first)."""
        wanted = np.zeros(len(self._names), np.bool_)
        wanted[list(owners)] = True
        found: NDArray[np.bool_] = wanted[self._owner[:count]]
        return found

    def _row_per_user(self, approx: NDArray[np.float32], most: int) -> tuple[NDArray[np.intp], bool]:
        """The best row by the first pass of each of the `most` users whose best rows score best,
        and whether that is every user of the group."""
        order = np.lexsort((-approx, self._owner[: len(approx)]))
        owners = self._owner[order]
        firsts = order[np.flatnonzero(np.r_[True, owners[1:] != owners[:-1]])]
        chosen = firsts[np.argsort(-approx[firsts], kind="stable")[:most]]
        return chosen.astype(np.intp), len(chosen) == len(firsts)

    def _reaching(self, found: _Pass, rows: NDArray[np.intp] | None, floor: float) -> NDArray[np.intp]:
        """The `rows` (None: all) whose first-pass score plus bound reaches `floor`: first against
        the group's largest bound (one comparison per row), then each against its own."""
        approx = found.approx
        if floor == -np.inf:
            return np.arange(len(approx)) if rows is None else rows
        lowest = _below(floor - found.widest)
        rows = np.flatnonzero(approx >= lowest) if rows is None else rows[approx[rows] >= lowest]
        reach = approx[rows].astype(np.float64) + found.bound(rows)
        return rows[reach >= floor]

    def _best_faces(self, found: _Pass, exact: _Exact, rows: NDArray[np.intp], faces: int) -> list[float]:
        """The `faces` best exact scores of a user's `rows`, by the same floor and bound as the
        users: a user with thousands of faces is not scored exactly in full."""
        if len(rows) <= faces:
            return sorted(exact(rows).values(), reverse=True)
        approx = found.approx
        scored = exact(rows[np.argsort(-approx[rows], kind="stable")[:faces]])
        floor = min(scored.values()) if len(scored) == faces else -np.inf
        scored.update(exact(self._reaching(found, rows, floor)))
        return sorted(scored.values(), reverse=True)[:faces]

    def _floor(self, scored: dict[int, float], users: int, complete: bool) -> float:
        """The `users`-th best of the distinct users' best scores among `scored`; with fewer users
        than that, the lowest of them if `scored` holds every user of the group, else -inf."""
        best: dict[int, float] = {}
        for row, score in scored.items():
            owner = int(self._owner[row])
            if score > best.get(owner, -np.inf):
                best[owner] = score
        if len(best) >= users:
            return sorted(best.values(), reverse=True)[users - 1]
        return min(best.values()) if complete and best else -np.inf

    def _exact(
        self,
        rows: NDArray[np.intp],
        query: NDArray[np.float32],
        vectors: NDArray[np.float32] | None = None,
    ) -> NDArray[np.float64]:
        """Exact scores of `rows`, from `vectors` (a small group's rows, read whole) or the file."""
        if vectors is not None:
            return exact_scores(vectors[rows], query)
        parts = [
            exact_scores(self._file.read(rows[start : start + EXACT_CHUNK]), query)
            for start in range(0, len(rows), EXACT_CHUNK)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, np.float64)

    def user_scores(self, query: NDArray[np.float32], uid: str) -> list[float]:
        """Every exact face score of one user, best first."""
        return self.user_scores_many(np.asarray(query, np.float32)[None, :], uid)[0]

    def user_scores_many(self, queries: NDArray[np.float32], uid: str) -> list[list[float]]:
        """user_scores() for each row of `queries`, reading the user's rows once."""
        rows = self._rows_of(uid)
        if not len(rows):
            return [[] for _ in queries]
        vectors = self._file.read(rows)
        return [sorted(exact_scores(vectors, query).tolist(), reverse=True) for query in queries]

    def rows(self) -> dict[int, str]:
        """face_id -> uid of every row: what the index holds, to compare with the store."""
        owners = self._owner[: len(self._face_ids)].tolist()
        return dict(zip(self._face_ids, (self._names[number] for number in owners), strict=True))

    # Snapshot -------------------------------------------------------------------------------------

    def save(self, header: dict[str, Any]) -> None:
        """Write the snapshot of these rows (snapshot.py); the caller holds the lock."""
        assert self.meta_path is not None
        count = len(self._face_ids)
        present, owners = np.unique(self._owner[:count], return_inverse=True)
        arrays: dict[str, NDArray[Any]] = {
            "face_ids": np.array(self._face_ids, np.int64),
            "names": np.frombuffer("\n".join(self._names[n] for n in present.tolist()).encode(), np.uint8),
            **{name.lstrip("_"): getattr(self, name)[:count] for name in _STATS},
            "owner": owners.astype(np.int32),
            **{f"codes{block}": codes for block, codes in enumerate(self._blocks)},
        }
        snapshot_id = uuid.uuid4().hex
        header = {
            **header,
            "id": snapshot_id,
            "count": count,
            "blocks": len(self._blocks),
            "rows_crc": self._file.checksums(count),
        }
        snapshot.write(self.meta_path, header, arrays)
        self.saved = True
        self.snapshot_id = snapshot_id
        self.snapshot_rows = count

    def restore(self, header: dict[str, Any], arrays: dict[str, NDArray[Any]]) -> None:
        """Take the rows of a snapshot whose header the caller has matched to the store."""
        count = int(header["count"])
        if self._file.size_rows() < count or self._file.checksums(count) != header["rows_crc"]:
            raise snapshot.SnapshotError("the rows file does not match its snapshot")
        blocks = [arrays[f"codes{block}"] for block in range(int(header["blocks"]))]
        self._reserve(count)
        if [(codes.shape, codes.dtype) for codes in blocks] != [
            (codes.shape, codes.dtype) for codes in self._blocks
        ]:
            raise snapshot.SnapshotError("the blocks do not have the expected shapes")
        self._blocks = blocks
        for name in _STATS:
            getattr(self, name)[:count] = arrays[name.lstrip("_")]
        names = bytes(arrays["names"]).decode().split("\n") if count else []
        face_ids = arrays["face_ids"].tolist()
        if len(face_ids) != count or (count and int(self._owner[:count].max()) >= len(names)):
            raise snapshot.SnapshotError("the ids do not match the rows")
        self._face_ids, self._names = face_ids, names
        self._number = dict(zip(names, range(len(names)), strict=True))
        self._row_of = dict(zip(face_ids, range(count), strict=True))
        if len(self._row_of) != count:
            raise snapshot.SnapshotError("a face id appears twice")
        if count:
            self._norm_max = float(self._norm[:count].max())
            self._residual_max = float(self._residual[:count].max())
        self.saved = True
        self.snapshot_id = str(header["id"])
        self.snapshot_rows = count

    def close(self) -> None:
        self._file.close()


_shared: FirstPass | None = None
_shared_lock = threading.Lock()


def shared_first_pass() -> FirstPass:
    """The first pass for indexes made without one (tests, tools), two threads as the server's
    default worker has."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FirstPass(threads=min(2, os.cpu_count() or 1))
        return _shared


def _claim(directory: Path) -> int | None:
    """An exclusive lock on the directory for this index, or None if another holds it: two
    processes (a server and `renlian import`) must never write each other's rows files."""
    private_dir(directory.parent)
    private_dir(directory)
    descriptor = os.open(directory / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


class FaceIndex:
    """All groups of all apps, keyed by (app_id, group_id), for one embedding model, and how far it
    follows the store's change feed: `applied[app]` is the last of the app's change numbers the
    groups hold (every earlier one too), `epoch` the database's (store/writes.py).

    With a `directory`, each group's float32 rows are a file there, and a snapshot beside them lets
    a restart skip reading the group again (snapshot.py): a snapshot names the epoch and the app's
    change number it holds, and a start applies to it only the changes logged since. Without one
    (tests, tools), the rows go to unnamed temporary files.

    Versions: a search holds its group (`reading`) from start to end. A write changes a group in
    place under the group's lock, so a search sees the group as it was before or after a write, never
    between; a rebuild makes a new group and swaps it in, and the old one's files are closed only
    after its last search ends.
    """

    def __init__(
        self, model: str, dim: int, directory: Path | None = None, threads: int | None = None
    ) -> None:
        self.model = model
        self.dim = dim
        self.directory = directory
        self.epoch: str | None = None
        self.applied: dict[str, int] = {}
        self._lock_file: int | None = None
        if directory is not None:
            self._lock_file = _claim(directory)
            if self._lock_file is None:
                logger.warning(
                    "face index: %s is in use by another process; this one keeps its rows in "
                    "temporary files and writes no snapshot",
                    directory,
                )
                self.directory = None
        self._pass = FirstPass(threads) if threads is not None else shared_first_pass()
        self._groups: dict[tuple[str, str], GroupIndex] = {}
        self._lock = threading.Lock()

    def group(self, app_id: str, group_id: str) -> GroupIndex | None:
        return self._groups.get((app_id, group_id))

    @contextmanager
    def reading(self, app_id: str, group_id: str) -> Iterator[GroupIndex | None]:
        """The group as one version for the whole of a search: held, and locked against writes."""
        with self._lock:
            group = self._groups.get((app_id, group_id))
            if group is not None:
                group.readers += 1
        if group is None:
            yield None
            return
        try:
            with group.lock:
                yield group
        finally:
            with self._lock:
                group.readers -= 1
                last = group.retired and group.readers == 0
            if last:
                group.close()

    def apps(self) -> set[str]:
        return {app_id for app_id, _ in list(self._groups)}

    def _paths(self, key: tuple[str, str]) -> tuple[Path, Path] | None:
        if self.directory is None:
            return None
        name = hashlib.sha256(f"{key[0]}\0{key[1]}".encode()).hexdigest()[:32]
        return self.directory / f"{name}.rows", self.directory / f"{name}.meta"

    def _new_group(self, key: tuple[str, str], *, keep_files: bool = False) -> GroupIndex:
        paths = self._paths(key)
        if paths is None:
            return GroupIndex(self.dim, self._pass)
        rows, meta = paths
        if not keep_files:
            meta.unlink(missing_ok=True)
            rows.unlink(missing_ok=True)
        group = GroupIndex(self.dim, self._pass, RowFile(self.dim, rows))
        group.meta_path = meta
        return group

    def _group_for_write(self, app_id: str, group_id: str) -> GroupIndex:
        with self._lock:
            group = self._groups.get((app_id, group_id))
            if group is None:
                group = self._groups[app_id, group_id] = self._new_group((app_id, group_id))
            return group

    def _header(self, key: tuple[str, str]) -> dict[str, Any]:
        return {
            "format": SNAPSHOT_FORMAT,
            "model": self.model,
            "dim": self.dim,
            "app_id": key[0],
            "group_id": key[1],
        }

    # Start-up ---------------------------------------------------------------------------------------

    def open(self, store: FaceStore) -> int:
        """Load every group at start-up: from its snapshot, brought up to the store's change numbers
        by the changes logged since it was taken, where the log still holds them and the epoch is
        the store's; from the store's faces otherwise (and then snapshot it). Returns the number of
        faces loaded. The numbers are read first: a write landing during the load is applied again
        by the change feed's follower, which is harmless (an add replaces its face id, a removal of
        an absent face does nothing)."""
        state = store.feed_state()
        vouchers = self._vouchers(state.epoch)
        why: dict[tuple[str, str], str] = {}
        for key in self._snapshotted() | set(store.registered_keys()):
            reason = self._restore(store, key, state, vouchers)
            if reason:
                why[key] = reason
        if why or not self._groups:
            # Counting faces per group reads the whole faces table: only when something is rebuilt
            # (or nothing was restored: then a group with faces that was never registered, written
            # around the write path, is found too).
            sizes = store.group_sizes(self.model)
            stale = {key: sizes[key] for key in sizes if key not in self._groups}
            for key in stale:
                logger.info(
                    "face index: rebuilding group %s of app %s (%s)",
                    key[1],
                    key[0],
                    why.get(key, "no snapshot"),
                )
            if stale:
                self._rebuild(store, stale, total=sum(sizes.values()))
            # Groups with no face of this model: empty, snapshotted too, so the next start need not
            # count every group's faces to learn that again.
            for key in why.keys() - sizes.keys():
                self._groups[key] = self._new_group(key)
        self.epoch = state.epoch
        self.applied = dict(state.numbers)
        for key, group in list(self._groups.items()):
            # A restored group that the changes since only appended to keeps its snapshot (with the
            # log, a crash still restores from it): rewriting it here (the codes, and the crc32 of
            # every row: 750 MB at 300,000 faces) would only delay the start; the clean stop does it.
            if group.snapshot_rows is None:
                with group.lock:
                    self._save(key, group)
        self._remove_orphans()
        return self.face_count()

    def _snapshotted(self) -> set[tuple[str, str]]:
        """The groups this directory holds snapshots of: a group whose faces were written around the
        write path (a bench's bulk load) is not registered, yet its snapshot is as good."""
        if self.directory is None:
            return set()
        found = set()
        for path in self.directory.glob("*.meta"):
            try:
                header = snapshot.read_header(path)
                found.add((str(header["app_id"]), str(header["group_id"])))
            except (snapshot.SnapshotError, KeyError, TypeError):
                continue  # a damaged file: its group, if registered, is rebuilt
        return found

    def _vouchers(self, epoch: str) -> dict[str, tuple[str, int]]:
        """What the last clean shutdown said: snapshot file -> (its id, a later change number that
        it still holds, because no change up to that number touched its group)."""
        if self.directory is None:
            return {}
        try:
            saved = json.loads((self.directory / VOUCHERS).read_text())
            if saved.get("epoch") != epoch:
                return {}
            return {
                name: (str(entry["id"]), int(entry["sequence"])) for name, entry in saved["groups"].items()
            }
        except (OSError, ValueError, KeyError, TypeError):
            return {}

    def _restore(
        self,
        store: FaceStore,
        key: tuple[str, str],
        state: FeedState,
        vouchers: dict[str, tuple[str, int]],
    ) -> str | None:
        """Load a group from its snapshot and the changes logged since; None when it did, else why
        not."""
        paths = self._paths(key)
        if paths is None:
            return "no index directory"
        group = self._new_group(key, keep_files=True)
        try:
            header, arrays = snapshot.read(paths[1], mapped="codes")
            expected = {**self._header(key), "epoch": state.epoch}
            if {name: header.get(name) for name in expected} != expected:
                raise snapshot.SnapshotError("made for another model or another database")
            held = int(header["sequence"])
            voucher = vouchers.get(paths[1].name)
            if voucher is not None and voucher[0] == header.get("id"):
                held = max(held, voucher[1])
            latest = state.numbers.get(key[0], 0)
            if held > latest:
                raise snapshot.SnapshotError("newer than the database (a restore?)")
            if held < state.pruned.get(key[0], 0):
                raise snapshot.SnapshotError("older than the changes the database still logs")
            group.restore(header, arrays)
            if held < latest:
                _apply_to(group, store.group_changes(key[0], key[1], held, latest), self.model)
        except snapshot.SnapshotError as exc:
            group.close()
            return str(exc)
        self._groups[key] = group
        return None

    def _rebuild(self, store: FaceStore, stale: dict[tuple[str, str], int], total: int) -> None:
        # One sequential scan when most faces need it, else each stale group through its index.
        if sum(stale.values()) * 2 >= total:
            self.load(store.embeddings(self.model), stale)
        else:
            for key in stale:
                self.load(store.group_embeddings(self.model, *key), {key: stale[key]})

    def _remove_orphans(self) -> None:
        """Files of groups that no longer hold faces of this model (deleted, or another model's)."""
        if self.directory is None:
            return
        kept = {path.name for key in self._groups for path in (self._paths(key) or ())}
        for path in self.directory.iterdir():
            if path.suffix in {".rows", ".meta", ".tmp"} and path.name not in kept:
                path.unlink(missing_ok=True)

    def load(
        self,
        rows: Iterable[tuple[str, str, int, str, bytes]],
        sizes: dict[tuple[str, str], int],
        only: set[tuple[str, str]] | None = None,
    ) -> int:
        """Build groups from (app_id, group_id, face_id, uid, float32 bytes) rows, given each
        group's row count; only rows of groups in `only` (default: in `sizes`) are kept."""
        for key in sizes:
            self._groups[key] = self._new_group(key)
            self._groups[key]._reserve(sizes[key])
        return self._fill(rows, {key: self._groups[key] for key in (sizes if only is None else only)})

    def _fill(
        self, rows: Iterable[tuple[str, str, int, str, bytes]], groups: dict[tuple[str, str], GroupIndex]
    ) -> int:
        """Append the rows of `groups` to them, coded in blocks of LOAD_BLOCK, so that a
        300,000-face group never sits in memory as float32; rows of other groups are skipped."""
        blocks: dict[tuple[str, str], tuple[list[int], list[str], list[bytes]]] = {}
        loaded = 0

        def flush(key: tuple[str, str]) -> None:
            face_ids, uids, blobs = blocks.pop(key)
            vectors = np.frombuffer(b"".join(blobs), dtype="<f4").reshape(len(blobs), self.dim)
            groups[key].extend(face_ids, uids, vectors)

        for app_id, group_id, face_id, uid, blob in rows:
            key = (app_id, group_id)
            if key not in groups:
                continue
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

    # Following the store ----------------------------------------------------------------------------

    def apply(self, changes: FaceChanges) -> None:
        """One committed change, in place. OSError (a full disk under the rows files) leaves the
        groups it touched unlike the store: the caller must rebuild the app (sync.py)."""
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

    def build_app(self, store: FaceStore, app_id: str) -> dict[tuple[str, str], GroupIndex]:
        """Every group of one app built anew from the store's faces, beside the groups in use: how
        an app is brought back after its index went wrong or its changes are no longer logged.
        (Their rows go to unnamed files: the groups they replace may still be read.)"""
        sizes = {key: size for key, size in store.group_sizes(self.model).items() if key[0] == app_id}
        fresh: dict[tuple[str, str], GroupIndex] = {}
        try:
            for key, size in sizes.items():
                group = fresh[key] = GroupIndex(self.dim, self._pass)
                group._reserve(size)
                self._fill(store.group_embeddings(self.model, *key), {key: group})
        except BaseException:
            for group in fresh.values():
                group.close()
            raise
        return fresh

    def swap_app(self, app_id: str, fresh: dict[tuple[str, str], GroupIndex]) -> None:
        """Make `fresh` the app's groups, at once; searches already in a replaced group finish in
        it, and its files close after the last of them."""
        with self._lock:
            old = [key for key in self._groups if key[0] == app_id]
            retired = [self._groups.pop(key) for key in old]
            self._groups.update(fresh)
            closing = []
            for group in retired:
                group.retired = True
                if group.readers == 0:
                    closing.append(group)
        for group in closing:
            with group.lock:
                group.close()

    # Shutdown ---------------------------------------------------------------------------------------

    def _save(self, key: tuple[str, str], group: GroupIndex) -> None:
        if group.meta_path is None or group.saved or self.epoch is None:
            return
        try:
            group.save({**self._header(key), "epoch": self.epoch, "sequence": self.applied.get(key[0], 0)})
        except OSError:
            # A snapshot only saves time at the next start; without it that start rebuilds.
            logger.exception("face index: could not snapshot group %s of app %s", key[1], key[0])

    def save(self, unsound: frozenset[str] | set[str] = frozenset()) -> None:
        """Snapshot every group changed since its last snapshot, and vouch that each unchanged one
        still holds the app's latest applied number, for a quick next start. The caller holds every
        app's write lock; `unsound`: apps whose groups may differ from the store (left out, their
        snapshots deleted)."""
        if self.directory is None or self.epoch is None:
            return
        vouchers: dict[str, dict[str, Any]] = {}
        for key, group in list(self._groups.items()):
            with group.lock:
                if key[0] in unsound:
                    group._changing(0)
                    continue
                self._save(key, group)
                if group.saved and group.meta_path is not None:
                    vouchers[group.meta_path.name] = {
                        "id": group.snapshot_id,
                        "sequence": self.applied.get(key[0], 0),
                    }
        temporary = self.directory / (VOUCHERS + ".tmp")
        try:
            temporary.write_text(json.dumps({"epoch": self.epoch, "groups": vouchers}))
            temporary.replace(self.directory / VOUCHERS)
        except OSError:
            logger.exception("face index: could not write %s", VOUCHERS)

    def close(self) -> None:
        with self._lock:
            groups, self._groups = list(self._groups.values()), {}
        for group in groups:
            group.close()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    # Inspection -------------------------------------------------------------------------------------

    def contents(self) -> dict[tuple[str, str], dict[int, str]]:
        """(app_id, group_id) -> {face_id: uid} for every non-empty group."""
        found = {}
        for key, group in list(self._groups.items()):
            with group.lock:
                if len(group):
                    found[key] = group.rows()
        return found

    def face_count(self) -> int:
        return sum(len(group) for group in list(self._groups.values()))

    def faces_per_app(self) -> dict[str, int]:
        """How many faces each app's groups hold: what /metrics shows, counts only."""
        counts: dict[str, int] = {}
        for (app_id, _), group in list(self._groups.items()):
            counts[app_id] = counts.get(app_id, 0) + len(group)
        return counts


def _apply_to(group: GroupIndex, changes: FaceChanges, model: str) -> None:
    """A group's logged changes (store group_changes), on a group no one else sees yet."""
    for _, _, face_id in changes.removed:
        group.remove(face_id)
    for face in changes.added:
        if face.model == model:
            group.add(face.face_id, face.uid, face.embedding)
