"""A group's exact float32 rows in a file, read and written in place with pread/pwrite.

The first pass reads only the int8 codes; the float32 rows are needed only for the few candidates a
search re-ranks and for verify, so they stay in the file and the page cache rather than in the
process: a 300,000-face group's 600 MB of rows cost no resident memory. pread rather than mmap, so
that the rows a re-rank touched do not stay mapped and counted in the process's memory afterwards.
A small group, read whole by every search, is the exception: its rows (at most a few MB) stay
mapped, since copying them out with pread on every search cost more than the product itself.
"""

from __future__ import annotations

import errno
import mmap
import os
import tempfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

# The rows are checksummed in pieces of this many bytes, two at a time: small enough that the
# pieces in flight add little to the peak memory of a start-up.
CHECK_CHUNK = 8 << 20
# A read this small is one pread, whatever rows it is for.
SPAN_BYTES = 4 << 20
# A fault hook for the tests (docs/library.md): while a file exists at the path this variable names,
# every write to a rows file fails as on a full disk, so that what follows such a failure is tested
# on a real server.
FAULT_FULL_ENV = "RENLIAN_FAULT_ROWS_FULL"


class RowFile:
    """Row i of `dim` float32 at byte i x dim x 4. `path` None: an unnamed temporary file."""

    def __init__(self, dim: int, path: Path | None = None) -> None:
        self.dim = dim
        self.row_bytes = dim * 4
        self.path = path
        if path is None:
            self._fd, name = tempfile.mkstemp(prefix="renlian-rows-")
            os.unlink(name)
        else:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._map: mmap.mmap | None = None

    def close(self) -> None:
        # The map is not closed here: a view of it may still be in use; it goes with its last view.
        self._map = None
        os.close(self._fd)

    def write(self, start: int, vectors: NDArray[np.float32]) -> None:
        """Rows start, start + 1, ... from `vectors` (n x dim)."""
        flag = os.environ.get(FAULT_FULL_ENV)
        if flag and os.path.exists(flag):
            raise OSError(errno.ENOSPC, f"No space left on device ({FAULT_FULL_ENV})")
        data = np.ascontiguousarray(vectors, dtype="<f4")
        written = os.pwrite(self._fd, data.data, start * self.row_bytes)
        if written != data.nbytes:
            raise OSError(f"short write to the rows file ({written} of {data.nbytes} bytes)")

    def read(self, rows: NDArray[np.intp]) -> NDArray[np.float32]:
        """The given rows, in the given order: one pread of the whole span when it is small (a
        small group: one system call beats a Python loop), else one per run of consecutive rows."""
        out = np.empty((len(rows), self.dim), np.float32)
        if not len(rows):
            return out
        first, last = int(rows.min()), int(rows.max())
        span = last - first + 1
        if span * self.row_bytes <= max(SPAN_BYTES, 4 * len(rows) * self.row_bytes):
            data = os.pread(self._fd, span * self.row_bytes, first * self.row_bytes)
            if len(data) != span * self.row_bytes:
                raise OSError("the rows file is shorter than the index")
            out[:] = np.frombuffer(data, "<f4").reshape(span, self.dim)[rows - first]
            return out
        order = np.argsort(rows, kind="stable")
        ordered = rows[order]
        breaks = np.flatnonzero(np.diff(ordered) != 1) + 1
        begin = 0
        for end in [*breaks.tolist(), len(ordered)]:
            first, count = int(ordered[begin]), end - begin
            data = os.pread(self._fd, count * self.row_bytes, first * self.row_bytes)
            if len(data) != count * self.row_bytes:
                raise OSError("the rows file is shorter than the index")
            out[order[begin:end]] = np.frombuffer(data, "<f4").reshape(count, self.dim)
            begin = end
        return out

    def head(self, count: int) -> NDArray[np.float32]:
        """The first `count` rows, read-only, from a map of the file (a small group read whole):
        writes land in the same page cache, so the map is remade only when the file outgrows it."""
        size = count * self.row_bytes
        if self._map is None or len(self._map) < size:
            if os.fstat(self._fd).st_size < size:
                raise OSError("the rows file is shorter than the index")
            self._map = mmap.mmap(self._fd, 0, access=mmap.ACCESS_READ)
        return np.frombuffer(self._map, "<f4", count=count * self.dim).reshape(count, self.dim)

    def move(self, source: int, target: int) -> None:
        self.write(target, self.read(np.array([source], np.intp)))

    def checksums(self, rows: int) -> list[int]:
        """crc32 of each CHECK_CHUNK of the first `rows` rows, on two threads taking every other
        chunk (zlib and pread let go of the GIL), so checking 600 MB at start-up takes a fraction
        of a second. Each thread reads into one buffer of its own: a new 8 MB bytes object per
        chunk was new pages to fault in each time, under the server's 1 MiB mmap threshold, and
        cost as much CPU as the crc itself."""
        size = rows * self.row_bytes

        def crcs(first: int) -> list[int]:
            buffer = memoryview(bytearray(CHECK_CHUNK))
            found = []
            for start in range(first, size, 2 * CHECK_CHUNK):
                chunk = buffer[: min(CHECK_CHUNK, size - start)]
                if os.preadv(self._fd, [chunk], start) != len(chunk):
                    raise OSError("the rows file is shorter than its snapshot says")
                found.append(zlib.crc32(chunk))
            return found

        with ThreadPoolExecutor(2) as pool:
            even, odd = pool.map(crcs, (0, CHECK_CHUNK))
        merged = [0] * (len(even) + len(odd))
        merged[0::2], merged[1::2] = even, odd
        return merged

    def size_rows(self) -> int:
        return os.fstat(self._fd).st_size // self.row_bytes
