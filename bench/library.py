"""The face library at scale: enrolment throughput, start-up, memory, identify and search latency.

    python -m bench.library [--sizes 1000,10000,100000,300000] [--requests 40] [--json PATH]
                            [--write-docs] [--skip-enrolment]
    python -m bench.library --crossover

`--crossover` alone: where the int8 first pass starts to pay. For groups of 500 to 16,000 synthetic
faces, one search (5 users, 5 faces each) and one 10-probe search_many, each read whole in float32
and through the int8 pass (index.DIRECT_ROWS moved past or below the size), the process's CPU time
p50 over 200 searches (20 multi-searches); the same answers both ways are checked.

Enrolment enrols real photos (variants of the committed test photos, each its own bytes and uid)
through HTTP `user/add` at concurrency 1 and 2, and through `renlian import`, whose start-up
(interpreter, models, store) is measured by importing an empty folder and subtracted.

For each gallery size, a store is written directly with SQLite (one synthetic unit-length embedding
per uid, each with a crop row of a real crop's size, as enrolment leaves them, plus the real
astronaut photo enrolled last so identify has a true hit), then:
  * in this process, the two halves of building the index from the store (reading the faces from
    SQLite, coding them), the exact search alone, `GroupIndex.search(query, 5, 5)`, over 100
    queries, and one search for 10 faces at once, `GroupIndex.search_many`, as v3's multi-search
    runs for a group photo of 10 people;
  * a real `renlian serve` on that store, started twice: first with no index snapshot (it builds
    the index from the store and saves the snapshot), then again (it loads the snapshot); for each,
    process start to /healthz 200 and the index load time it logs; on the second, its resident
    memory after loading and after the identify runs (and the peak), identify latency over HTTP
    with the real astronaut photo (user_top_num=5), and how long one more `user/add` into the same
    app takes once the library is that big.
`--json PATH` writes the machine, date, commit and every figure per gallery size.
Scratch data lives in a temporary folder that is removed at the end.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from bench.datasets import analyzer, machine, read_bgr, write_section
from renlian.library import index as index_module
from renlian.library.index import FaceIndex, GroupIndex
from renlian.settings import Settings
from renlian.store.sqlite import SQLiteStore
from renlian.vision.image import decode_image
from tests.conftest import Server, create_app, start_server

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data"
ADD = "/rest/2.0/face/v2/faceset/user/add"
IDENTIFY = "/rest/2.0/face/v2/identify"
GROUP = "gallery"
ENROL_PHOTOS = 60
SEARCH_QUERIES = 100
# One add into a big library is cut off here, and the server killed, rather than waited out.
LATE_ADD_TIMEOUT_S = 60.0
MULTI_FACES = 10
TARGETS = (
    "at 300k faces: search alone <= 15 ms (p50); a 10-face multi-search <= 2x one search; identify "
    "end to end <= 75 ms (p50); start-up <= 3 s; server peak RSS <= 700 MiB; enrolment >= 30 faces/s"
)


def post(client: httpx.Client, url: str, body: bytes, timeout: float = 120) -> dict[str, Any]:
    """POST a form encoded beforehand: Python's urlencode alone takes about 9 ms for a 100 KB image,
    a cost of this client that is no part of the server's latency."""
    headers = {"content-type": "application/x-www-form-urlencoded"}
    found: dict[str, Any] = client.post(url, content=body, headers=headers, timeout=timeout).json()
    return found


def form(**fields: str) -> bytes:
    return urllib.parse.urlencode(fields).encode()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def variants(count: int, seed: int) -> list[bytes]:
    """`count` distinct JPEGs of the two test photos, scaled and cropped a little differently each."""
    rng = np.random.default_rng(seed)
    portraits = [read_bgr(PHOTOS / name) for name in ("astronaut.jpg", "grace_hopper.jpg")]
    out = []
    for i in range(count):
        image = portraits[i % 2]
        h, w = image.shape[:2]
        # Margins up to 8% keep the whole face in frame; scale 0.5-1 keeps it well above YuNet's minimum.
        top, bottom, left, right = (int(v) for v in rng.integers(0, int(0.08 * min(h, w)), 4))
        scale = float(rng.uniform(0.5, 1.0))
        cropped = image[top : h - bottom, left : w - right]
        resized = cv2.resize(cropped, (round(cropped.shape[1] * scale), round(cropped.shape[0] * scale)))
        out.append(cv2.imencode(".jpg", resized, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
    return out


def rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MiB: now and at its peak."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


# Enrolment -------------------------------------------------------------------------------------


@dataclass
class Throughput:
    label: str
    photos: int
    seconds: float
    per_add_ms: tuple[float, float] | None = None

    def row(self) -> str:
        latency = f"{self.per_add_ms[0]:.0f} / {self.per_add_ms[1]:.0f}" if self.per_add_ms else "-"
        rate = self.photos / self.seconds
        verdict = "ok" if rate >= 30 else "MISSED"
        return f"| {self.label} | {self.photos} | {self.seconds:.2f} | {rate:.1f} ({verdict}) | {latency} |"


def http_enrolment(server: Server, photos: list[bytes], concurrency: int, group: str) -> Throughput:
    forms = [
        form(uid=f"u{i}", user_info=f"photo {i}", group_id=group, image=base64.b64encode(p).decode())
        for i, p in enumerate(photos)
    ]
    with httpx.Client(params={"access_token": server.token}) as client:

        def add(request: bytes) -> float:
            start = time.perf_counter()
            body = post(client, server.base_url + ADD, request)
            assert "error_code" not in body, body
            return (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            latencies = list(pool.map(add, forms))
        elapsed = time.perf_counter() - start
    return Throughput(
        f"HTTP user/add, concurrency {concurrency}", len(photos), elapsed, percentiles(latencies)
    )


def import_command(folder: Path, data_dir: Path, app_id: str) -> float:
    command = [sys.executable, "-m", "renlian.cli", "import", str(folder), "--group", "imported"]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--app", app_id, "--data-dir", str(data_dir)], capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - start
    assert done.returncode == 0 and "failed 0" in done.stdout, (done.stdout, done.stderr[-2000:])
    return elapsed


def enrolment(tmp: Path) -> list[Throughput]:
    results = []
    (tmp / "http").mkdir()
    server = start_server(tmp / "http")
    try:
        # The first add pays for lazy per-thread set-up; it is not what a steady stream of adds sees.
        http_enrolment(server, variants(1, seed=99), 1, "warmup")
        for concurrency in (1, 2):
            photos = variants(ENROL_PHOTOS, seed=concurrency)
            results.append(http_enrolment(server, photos, concurrency, f"c{concurrency}"))
            print(results[-1].row(), flush=True)
    finally:
        server.stop()

    data_dir = tmp / "import" / "data"
    app_id = create_app(data_dir)["app_id"]
    empty, tree = tmp / "import" / "empty", tmp / "import" / "tree"
    empty.mkdir()
    for i, photo in enumerate(variants(ENROL_PHOTOS, seed=3)):
        folder = tree / f"person{i // 2}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i % 2}.jpg").write_bytes(photo)
    # Same command on an empty folder: interpreter, imports, models and store, with nothing to enrol.
    start_up = import_command(empty, data_dir, app_id)
    total = import_command(tree, data_dir, app_id)
    results.append(Throughput("`renlian import`, whole command", ENROL_PHOTOS, total))
    results.append(
        Throughput(f"`renlian import`, less its {start_up:.1f} s start-up", ENROL_PHOTOS, total - start_up)
    )
    for result in results[-2:]:
        print(result.row(), flush=True)
    return results


# Gallery size -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RealFace:
    """The astronaut as enrolment stores it, so identify over HTTP has a true match to find."""

    sha256: str
    embedding: np.ndarray
    crop_jpeg: bytes


def real_face(settings: Settings) -> tuple[RealFace, tuple[float, float]]:
    """The astronaut as stored, and how long the server's models take on the probe photo.

    identify is that model time plus the search plus HTTP; timing it here, with the server's
    threads per request, tells which part a missed target is in.
    """
    model = analyzer(settings.recognizer, threads=settings.threads_per_worker)
    data = (PHOTOS / "astronaut.jpg").read_bytes()
    embedding, crop = model.enrolment_face(read_bgr(PHOTOS / "astronaut.jpg"))
    jpeg = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    text = base64.b64encode(data).decode()
    limits = settings.image_limits()
    model.embed_largest(decode_image(text, limits))  # warm-up: first-run allocations
    samples = []
    for _ in range(20):
        start = time.perf_counter()
        model.embed_largest(decode_image(text, limits))
        samples.append((time.perf_counter() - start) * 1000)
    return RealFace(hashlib.sha256(data).hexdigest(), embedding, jpeg), percentiles(samples)


def synthetic(count: int, dim: int, seed: int, chunk: int = 50_000) -> Iterator[np.ndarray]:
    """Random unit vectors in chunks, so a 300k gallery never sits in this process twice over."""
    rng = np.random.default_rng(seed)
    for start in range(0, count, chunk):
        block = rng.standard_normal((min(chunk, count - start), dim), dtype=np.float32)
        yield block / np.linalg.norm(block, axis=1, keepdims=True)


# (uid, user_info, image sha256, embedding, crop JPEG): one enrolled photo, as the store keeps it.
Row = tuple[str, str, str, np.ndarray, bytes]


def insert(db: sqlite3.Connection, app_id: str, model: str, rows: list[Row]) -> None:
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO users (app_id, group_id, uid, user_info) VALUES (?, ?, ?, ?)",
        [(app_id, GROUP, uid, info) for uid, info, _, _, _ in rows],
    )
    db.executemany(
        "INSERT INTO faces (app_id, group_id, uid, image_sha256, model, embedding) VALUES (?, ?, ?, ?, ?, ?)",
        [(app_id, GROUP, uid, sha, model, vector.astype("<f4").tobytes()) for uid, _, sha, vector, _ in rows],
    )
    db.executemany(
        "INSERT INTO crops (app_id, image_sha256, jpeg) VALUES (?, ?, ?)",
        [(app_id, sha, jpeg) for _, _, sha, _, jpeg in rows],
    )
    db.execute("COMMIT")


def build_store(path: Path, app_id: str, size: int, model: str, dim: int, real: RealFace) -> float:
    """`size` faces in GROUP of `app_id`: size - 1 synthetic ones, then the astronaut."""
    start = time.perf_counter()
    SQLiteStore(path).close()  # runs the migrations, so the schema is exactly the product's
    db = sqlite3.connect(path, isolation_level=None)
    # Scratch data: durability would only slow the build.
    db.execute("PRAGMA synchronous = OFF")
    first = 0
    for block in synthetic(size - 1, dim, seed=size):
        uids = [f"s{first + i}" for i in range(len(block))]
        # A crop row per face, as enrolment leaves them: their number matters to how writes scale.
        insert(
            db,
            app_id,
            model,
            [
                (uid, "", hashlib.sha256(uid.encode()).hexdigest(), vector, real.crop_jpeg)
                for uid, vector in zip(uids, block, strict=True)
            ],
        )
        first += len(block)
    insert(db, app_id, model, [("astronaut", "astronaut", real.sha256, real.embedding, real.crop_jpeg)])
    # A server should start from a checkpointed file, as it would after any quiet period.
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return time.perf_counter() - start


@dataclass
class InProcess:
    read_s: float
    build_s: float
    search_ms: tuple[float, float]
    multi_ms: tuple[float, float]
    # The process's CPU time (every thread's), p50: what a busy machine's wall clock hides.
    search_cpu_ms: float
    multi_cpu_ms: float


def in_process(path: Path, app_id: str, model: str, dim: int, real: RealFace) -> InProcess:
    store = SQLiteStore(path)
    start = time.perf_counter()
    rows = list(store.embeddings(model))
    read_s = time.perf_counter() - start
    # No directory: the rows go to a temporary file, and the server's snapshot is left alone.
    index = FaceIndex(model, dim)
    start = time.perf_counter()
    index.load(rows, store.group_sizes(model))
    build_s = time.perf_counter() - start
    store.close()
    del rows
    group = index.group(app_id, GROUP)
    assert group is not None
    # The real probe, then copies of it with noise, so that every query differs.
    rng = np.random.default_rng(1)
    queries = [real.embedding.astype(np.float32)]
    for _ in range(SEARCH_QUERIES - 1):
        noisy = real.embedding + rng.normal(0, 0.05, dim).astype(np.float32)
        queries.append((noisy / np.linalg.norm(noisy)).astype(np.float32))
    assert group.search(queries[0], 5, 5)[0].uid == "astronaut"
    samples, cpu = [], []
    for query in queries:
        start, start_cpu = time.perf_counter(), time.process_time()
        group.search(query, 5, 5)
        samples.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    many, many_cpu = [], []
    for first in range(0, SEARCH_QUERIES - MULTI_FACES + 1, MULTI_FACES):
        batch = np.stack(queries[first : first + MULTI_FACES])
        start, start_cpu = time.perf_counter(), time.process_time()
        found = group.search_many(batch, 5, 5)
        many.append((time.perf_counter() - start) * 1000)
        many_cpu.append((time.process_time() - start_cpu) * 1000)
        assert [hits[0].uid for hits in found] == ["astronaut"] * MULTI_FACES
    index.close()
    return InProcess(
        read_s,
        build_s,
        percentiles(samples),
        percentiles(many),
        statistics.median(cpu),
        statistics.median(many_cpu),
    )


@dataclass
class Served:
    cold_start_s: float
    cold_load_s: float
    cold_rss_peak: float
    start_s: float
    load_s: float
    rss_loaded: float
    rss_after: float
    rss_peak: float
    identify_ms: tuple[float, float]
    late_add_s: float | None  # None: cut off at LATE_ADD_TIMEOUT_S


def logged_load(log: Path) -> float:
    """The index load time of the server's latest start, as it logs it."""
    found = re.findall(r"face index: \d+ faces loaded in ([\d.]+) s", log.read_text())
    assert found, "the server did not log its index load"
    return float(found[-1])


def served(tmp: Path, app: dict[str, str], requests: int) -> Served:
    # First start: no snapshot yet, the index is built from the store and snapshotted.
    start = time.perf_counter()
    server = start_server(tmp, app=app)
    cold_start_s = time.perf_counter() - start
    cold_load_s = logged_load(tmp / "server.log")
    _, cold_rss_peak = rss_mb(server.process.pid)
    server.stop()
    # Second start, as after any restart: from the snapshot.
    start = time.perf_counter()
    server = start_server(tmp, app=app)
    start_s = time.perf_counter() - start
    pid = server.process.pid
    stuck = False
    late_add_s: float | None = None
    try:
        load_s = logged_load(tmp / "server.log")
        rss_loaded, _ = rss_mb(pid)
        probe = base64.b64encode((PHOTOS / "astronaut.jpg").read_bytes()).decode()
        request = form(group_id=GROUP, user_top_num="5", image=probe)
        samples = []
        with httpx.Client(params={"access_token": server.token}) as client:
            body = post(client, server.base_url + IDENTIFY, request)
            assert body["result"][0]["uid"] == "astronaut", body
            for _ in range(requests):
                begin = time.perf_counter()
                body = post(client, server.base_url + IDENTIFY, request)
                samples.append((time.perf_counter() - begin) * 1000)
                assert body["result"][0]["uid"] == "astronaut", body
            rss_after, rss_peak = rss_mb(pid)
            # Another group of the same app: the add must not be refused for a full group at 300k.
            late = form(
                uid="late",
                user_info="late",
                group_id="late",
                image=base64.b64encode(variants(1, seed=7)[0]).decode(),
            )
            begin = time.perf_counter()
            try:
                added = post(client, server.base_url + ADD, late, timeout=LATE_ADD_TIMEOUT_S)
                assert "error_code" not in added, added
                late_add_s = time.perf_counter() - begin
            except httpx.TimeoutException:
                stuck = True
        return Served(
            cold_start_s,
            cold_load_s,
            cold_rss_peak,
            start_s,
            load_s,
            rss_loaded,
            rss_after,
            rss_peak,
            percentiles(samples),
            late_add_s,
        )
    finally:
        if stuck:
            # Still inside the write: a graceful stop would wait for it to finish.
            server.process.send_signal(signal.SIGKILL)
            server.process.wait(timeout=30)
        else:
            server.stop()


def gallery_row(size: int, build_s: float, inner: InProcess, outer: Served) -> str:
    late = (
        f"{outer.late_add_s:.2f}" if outer.late_add_s is not None else f"> {LATE_ADD_TIMEOUT_S:.0f} (cut off)"
    )
    return (
        f"| {size:,} | {build_s:.1f} | {outer.cold_start_s:.2f} / {outer.start_s:.2f} | "
        f"{outer.cold_load_s:.2f} / {outer.load_s:.2f} | {inner.read_s:.2f} / {inner.build_s:.2f} | "
        f"{outer.rss_loaded:.0f} / {outer.rss_after:.0f} / {outer.rss_peak:.0f} "
        f"({outer.cold_rss_peak:.0f}) | "
        f"{outer.identify_ms[0]:.1f} / {outer.identify_ms[1]:.1f} | "
        f"{inner.search_ms[0]:.2f} / {inner.search_ms[1]:.2f} ({inner.search_cpu_ms:.2f}) | "
        f"{inner.multi_ms[0]:.1f} ({inner.multi_ms[0] / inner.search_ms[0]:.1f}x; "
        f"{inner.multi_cpu_ms:.1f}, {inner.multi_cpu_ms / inner.search_cpu_ms:.1f}x) | {late} |"
    )


def figures(size: int, inner: InProcess, outer: Served) -> dict[str, float | None]:
    """One gallery size's figures, as --json writes them."""
    return {
        "faces": size,
        "search_p50_ms": round(inner.search_ms[0], 2),
        "search_p95_ms": round(inner.search_ms[1], 2),
        "multi_search_10_faces_p50_ms": round(inner.multi_ms[0], 2),
        "search_cpu_p50_ms": round(inner.search_cpu_ms, 2),
        "multi_search_10_faces_cpu_p50_ms": round(inner.multi_cpu_ms, 2),
        "identify_p50_ms": round(outer.identify_ms[0], 1),
        "identify_p95_ms": round(outer.identify_ms[1], 1),
        "startup_s": round(outer.start_s, 2),
        "startup_without_snapshot_s": round(outer.cold_start_s, 2),
        "index_load_s": outer.load_s,
        "index_load_without_snapshot_s": outer.cold_load_s,
        "rss_loaded_mib": round(outer.rss_loaded),
        "rss_peak_mib": round(outer.rss_peak),
        "rss_peak_without_snapshot_mib": round(outer.cold_rss_peak),
        "late_add_s": None if outer.late_add_s is None else round(outer.late_add_s, 3),
    }


def verdicts(size: int, inner: InProcess, outer: Served) -> list[str]:
    checks = [
        ("search p50", inner.search_ms[0], 15.0, "ms"),
        ("10-face multi-search / one search", inner.multi_ms[0] / inner.search_ms[0], 2.0, "x"),
        ("10-face multi-search / one search, CPU", inner.multi_cpu_ms / inner.search_cpu_ms, 2.0, "x"),
        ("identify p50", outer.identify_ms[0], 75.0, "ms"),
        ("start-up", outer.start_s, 3.0, "s"),
        ("RSS peak", outer.rss_peak, 700.0, "MiB"),
    ]
    return [
        f"{size:,} faces: {name} {value:.1f} {unit} (target at 300k <= {limit:g} {unit}): "
        + ("ok" if value <= limit else "MISSED")
        for name, value, limit, unit in checks
    ]


def commit() -> str:
    found = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return found.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def crossover(dim: int = 512) -> list[str]:
    """The table of `--crossover` (module doc)."""
    lines = [
        "| faces | one search, float32 / int8 pass, CPU p50 ms "
        "| 10 probes, float32 / int8 pass, CPU p50 ms |",
        "|---|---|---|",
    ]
    saved = index_module.DIRECT_ROWS
    try:
        for size in (500, 1000, 2000, 3000, 4000, 6000, 8000, 16000):
            group = GroupIndex(dim)
            vectors = next(synthetic(size, dim, seed=size))
            group.extend(list(range(size)), [f"u{i}" for i in range(size)], vectors)
            rng = np.random.default_rng(size)
            noisy = vectors[:10] + rng.normal(0, 0.05, (10, dim)).astype(np.float32)
            probes = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
            cells, answers = [], []
            for direct in (size, 0):
                index_module.DIRECT_ROWS = direct
                answers.append(group.search_many(probes, 5, 5))
                cells.append(search_cpu_ms(group, probes))
            assert answers[0] == answers[1], "the two passes answered differently"
            group.close()
            (one_f, ten_f), (one_i, ten_i) = cells
            lines.append(f"| {size:,} | {one_f:.2f} / {one_i:.2f} | {ten_f:.2f} / {ten_i:.2f} |")
            print(lines[-1], flush=True)
    finally:
        index_module.DIRECT_ROWS = saved
    return lines


def search_cpu_ms(group: GroupIndex, probes: np.ndarray) -> tuple[float, float]:
    """CPU ms p50 of one search (200 of them) and of one search_many of every probe (20)."""
    one, many = [], []
    for i in range(200):
        start = time.process_time()
        group.search(probes[i % len(probes)], 5, 5)
        one.append((time.process_time() - start) * 1000)
    for _ in range(20):
        start = time.process_time()
        group.search_many(probes, 5, 5)
        many.append((time.process_time() - start) * 1000)
    return statistics.median(one), statistics.median(many)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000,300000")
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--json", type=Path, help="write the figures here as JSON")
    parser.add_argument("--skip-enrolment", action="store_true", help="only the gallery sizes")
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--crossover", action="store_true", help="only where the int8 pass starts to pay")
    args = parser.parse_args()
    if args.crossover:
        print(f"Measured {machine()}, `python -m bench.library --crossover`", flush=True)
        crossover()
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    settings = Settings()
    print(f"targets: {TARGETS}", flush=True)
    rows, checks, measured = [], [], []
    with tempfile.TemporaryDirectory(prefix="renlian-bench-library-") as scratch:
        tmp = Path(scratch)
        enrolled = [] if args.skip_enrolment else enrolment(tmp)
        real, probe_ms = real_face(settings)
        print(f"probe photo, decode + detect + embed in process: p50 {probe_ms[0]:.1f} ms", flush=True)
        dim = int(real.embedding.shape[0])
        for size in sizes:
            where = tmp / f"gallery{size}"
            data_dir = where / "data"
            data_dir.mkdir(parents=True)
            app = create_app(data_dir)
            path = data_dir / "renlian.sqlite3"
            build_s = build_store(path, app["app_id"], size, settings.recognizer, dim, real)
            inner = in_process(path, app["app_id"], settings.recognizer, dim, real)
            outer = served(where, app, args.requests)
            rows.append(gallery_row(size, build_s, inner, outer))
            checks.extend(verdicts(size, inner, outer))
            measured.append(figures(size, inner, outer))
            print(rows[-1], flush=True)
            print("\n".join(checks[-6:]), flush=True)
            if args.json:  # after every size, so that a long run that is cut off keeps what it has
                args.json.write_text(
                    json.dumps(
                        {
                            "machine": machine(),
                            "date": date.today().isoformat(),
                            "commit": commit(),
                            "recognizer": settings.recognizer,
                            "workers_x_threads": [settings.inference_workers, settings.threads_per_worker],
                            "probe_models_p50_ms": round(probe_ms[0], 1),
                            "sizes": measured,
                        },
                        indent=2,
                    )
                )
    custom = f" --sizes {args.sizes}" if args.sizes != parser.get_default("sizes") else ""
    intro = [
        "Enrolment enrols real photos (the test photos, scaled and cropped, each its own uid) into an "
        "empty library, over HTTP and with `renlian import`, whose start-up is measured by importing an "
        "empty folder. The gallery rows use a store written directly with SQLite: synthetic unit-length "
        "embeddings, one face per uid, each with a crop row as enrolment leaves them, plus the real "
        "astronaut photo, who is the identify probe (`user_top_num=5`).",
        "The server is started twice on each store: the first start finds no index snapshot, builds "
        "the index from the store and saves one; the second loads it, as every restart after a clean "
        "stop does. Start-up runs from process start to the first `/healthz` 200 (first / second "
        "start); the index load is what the server logs, and the two halves of building it from the "
        "store are timed apart in the bench's own process. Memory is the second server's VmRSS and its "
        'peak (VmHWM; the first server\'s peak in brackets). "Search alone" is '
        "`GroupIndex.search(query, 5, 5)` in process over 100 queries, with the process's CPU time (all "
        'its threads) p50 in brackets, which a busy machine\'s wall clock does not blur; "10 faces" is '
        "one `GroupIndex.search_many` of 10 probes, as v3's multi-search runs for a group photo, and "
        "its ratio to one search, in wall and CPU time. HTTP requests are form-encoded before the "
        "clock starts (Python's urlencode alone takes about 9 ms for the 100 KB probe). identify's "
        "time is the probe's "
        "models (decoding the 512x512 astronaut JPEG, detecting and embedding its face: "
        f"{probe_ms[0]:.1f} / {probe_ms[1]:.1f} ms "
        "p50 / p95 in process, whatever the gallery), the search, and HTTP. The last column is one "
        "`user/add` of a new uid into another group of the same app once the library holds that many "
        f"faces, cut off after {LATE_ADD_TIMEOUT_S:.0f} s.",
    ]
    enrolment_table = [
        "| enrolment | photos | seconds | faces/s (target >= 30) | per add p50 / p95 ms |",
        "|---|---|---|---|---|",
        *(result.row() for result in enrolled),
        "",
    ]
    lines = [
        "## The face library at scale",
        "",
        # Wrapped like the hand-written text around it, so that the file reads well as plain text too.
        *[line for text in intro for line in [*textwrap.wrap(text, 100), ""]],
        f"Measured {machine()} with `python -m bench.library{custom} --write-docs`; "
        f"recognizer {settings.recognizer}, inference workers x threads: {settings.inference_workers} x "
        f"{settings.threads_per_worker}. Targets: {TARGETS}.",
        "",
        *(enrolment_table if enrolled else []),
        "| faces | store build s (bench only) | start-up s, first / second (to /healthz) "
        "| index load s, first / second (server log) | in process: SQLite read / index build s "
        "| RSS after load / after identify / peak (first start's peak) MiB | identify p50 / p95 ms (HTTP) "
        "| search alone p50 / p95 ms (CPU p50) | 10 faces p50 ms (x one search; CPU p50, x one search's) "
        "| one more user/add s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        *(f"- {check}" for check in checks),
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_section(Path("docs/benchmarks.md"), "library", lines)


if __name__ == "__main__":
    main()
