"""Scale-out: several `renlian serve` nodes on one PostgreSQL database (docs/scale-out.md).

    python -m bench.fleet [--database-url URL] [--changes 100] [--faces 1000] [--clients 4]
                          [--seconds 30] [--startup-faces 100000] [--starts 3] [--json [PATH]]
                          [--write-docs]
    python -m bench.fleet --scenario write-race [--faces 100000] [--seconds 60] [--json [PATH]]
                          [--write-docs]
    python -m bench.fleet --scenario startup [--startup-faces 300000] [--starts 3] [--changes 100]
                          [--json [PATH]] [--write-docs]

Everything runs as real processes on this machine: PostgreSQL (a throwaway cluster started with
tests/postgres_cluster.py, stopped and removed at the end, unless `--database-url` names an existing
empty database; the bench leaves its rows there, drop the database afterwards) and `renlian serve`
nodes started as tests/conftest.py starts them, with RENLIAN_DATABASE_URL set and the default
settings otherwise. The bench's own clients run on the same cores.

1. Propagation. Nodes A and B; a group holding one background user (grace_hopper.jpg). `--changes`
   times: a new user is enrolled on A (v3 user/add, astronaut.jpg); from the moment A's answer
   arrives, B is polled back to back until it shows the user; then the user is deleted on A (v3
   user/delete) and B is polled until the user is gone. Two ways of looking at B, in two rounds:
   its index (the face count of the app in GET /metrics, renlian_index_faces: a cheap request), and
   its search answers (v3 search for the photo in the group: the top user is the new one, or not).
   A delay seen through search includes up to one search request on B, whose plain latency is
   measured in the same run (and /metrics's too) so that it can be subtracted.
2. Identify throughput. A group of `--faces` faces: the four test photos enrolled through HTTP
   (v3 user/add), the rest synthetic unit vectors of the recognizer's dimension written through
   PostgresStore.enrol (each its own uid, with a real crop). `--clients` closed-loop client threads
   send v2 identify (obama.jpg, user_top_num=1) for `--seconds`, first all to node A (B stays up and
   idle), then round-robin over A and B, then (where the default is not already one single-threaded
   inference worker per core) all to a third node C with one such worker per core. Every answer
   must name obama. The CPU time of each node, of the clients, of PostgreSQL and of the whole
   machine is read from /proc. On a machine whose cores are few, two nodes share them with each
   other and with the clients: the second node adds requests per second only where the first left
   cores idle, which the third row shows one node can use as well.
3. Start-up with `--startup-faces` faces. The nodes are stopped; the database is filled up to that
   many faces (a new app, synthetic unit vectors written with COPY into users, faces and crops, one
   real crop's bytes per face, as enrolment leaves them, with no change number: only nodes started
   afterwards hold them), then VACUUM ANALYZE, as autovacuum would do; `renlian serve` is started
   `--starts` times and timed from process start to the first GET /healthz 200, with its resident
   memory (VmRSS) and peak (VmHWM) at that moment and the index load time it logs. The same is
   measured first on the database as parts 1-2 left it, for the memory a face costs.
4. Write race (`--scenario write-race`, alone). One app with `--faces` faces in one group, written
   with COPY as in part 3 before two nodes start. For `--seconds`, four closed-loop client threads:
   on each node one enrolling new users into that group (v3 user/add, each a unique JPEG copy of
   one of the four test photos, so every add is a real face write) and one searching it (v3 search
   of obama.jpg). Both nodes' writes land on one app, each node applying its own and following the
   other's. Reported per node: renlian_index_sync_reloads on /metrics before and after (it must
   not move: no write makes a node rebuild an app), the changes it applied, enrolments
   acknowledged, searches that succeeded and that were refused with 222302 (216300: the app's index
   not known to be current; when they came), the largest sync lag /metrics showed (read every
   0.5 s), and, once the clients stop, the app's face count in its index against the database's.
   The nodes' logs stay in the bench's temp dir until it ends; their lines mentioning 'index sync'
   are printed (and kept in the JSON).

5. A node's own snapshot (`--scenario startup`, alone). One app with `--startup-faces` faces in one
   group, written with COPY as in part 3; one node started `--starts` times on the same data
   directory, each timed as in part 3 and stopped cleanly: the first finds no snapshot and reads
   every face, the others start from the snapshot the last clean stop left. Then, with the node
   stopped, another process (the store's write path, as `renlian import` or another node writes)
   enrols `--changes` new faces, each its own numbered change, and the node starts once more: from
   its snapshot plus the changes logged since. Last, a node with a new, empty data directory, for
   comparison with the first start.

Output: progress, then the tables, with the machine, date and commit; `--json` prints one JSON object
instead of the tables (progress goes to stderr), `--json PATH` writes it to PATH and prints the
tables; `--write-docs` puts the tables in docs/scale-out.md (the write race in a block of its own).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import math
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import psycopg

from bench.datasets import analyzer, machine, read_bgr, write_section
from bench.latency import timed
from bench.library import rss_mb, synthetic
from renlian.errors import ErrorCode
from renlian.settings import Settings
from renlian.store.base import NewFace
from renlian.store.postgres import PostgresStore, masked
from tests.conftest import Server, start_server
from tests.postgres_cluster import Cluster, binaries

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data"
V3 = "/rest/2.0/face/v3"
IDENTIFY = "/rest/2.0/face/v2/identify"
PROPAGATION_GROUP = "propagation"
THROUGHPUT_GROUP = "throughput"
STARTUP_GROUP = "startup"
# A change that B has not shown after this long is counted as missed and the bench goes on.
PROPAGATION_LIMIT_S = 10.0
SCENARIOS = ("parts", "write-race", "startup")
DEFAULT_FACES = {"parts": 1000, "write-race": 100_000, "startup": 0}
DEFAULT_SECONDS = {"parts": 30.0, "write-race": 60.0, "startup": 0.0}
# Plain request latencies on B, measured beside the propagation rounds.
PLAIN_REQUESTS = 50
# Rows written to PostgreSQL per transaction when filling the start-up database.
FILL_CHUNK = 10_000
HEALTH_POLL_S = 0.05
START_LIMIT_S = 300.0
# What v3 search answers when no user matches, and when the node's index is not known to be current
# (v2's 216300 "db error" is v3's 222302 "system error").
NOT_FOUND = ErrorCode.MATCH_USER_NOT_FOUND.v3_code
INDEX_NOT_CURRENT = ErrorCode.DB_ERROR.v3_code


def log(message: str) -> None:
    """Progress: to stderr, so that --json's stdout holds the JSON object alone."""
    print(message, file=sys.stderr, flush=True)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def short_commit() -> str:
    found = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    )
    return (found.stdout.strip() or "unknown") + (
        " (with uncommitted changes)" if dirty.stdout.strip() else ""
    )


def postgres_version(url: str) -> str:
    with psycopg.connect(url) as db:
        row = db.execute("SHOW server_version").fetchone()
        fsync = db.execute("SHOW fsync").fetchone()
    return f"{row[0] if row else '?'} (fsync {fsync[0] if fsync else '?'})"


def summary(samples: list[float]) -> dict[str, float | None]:
    """p50, p99 (nearest rank) and max of milliseconds."""
    if not samples:
        return {"n": 0, "p50": None, "p99": None, "max": None}
    ordered = sorted(samples)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return {
        "n": len(ordered),
        "p50": round(statistics.median(ordered), 2),
        "p99": round(p99, 2),
        "max": round(ordered[-1], 2),
    }


def b64(name: str) -> str:
    return base64.b64encode((PHOTOS / name).read_bytes()).decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a process so far (0 for one that is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(postmaster: int | None) -> float | None:
    """CPU seconds so far of the PostgreSQL server `postmaster` and its backends (None: not known,
    a database given by URL)."""
    if postmaster is None:
        return None
    total = cpu_seconds(postmaster)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if parent == postmaster:
                total += cpu_seconds(int(entry.name))
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (not idle, not waiting for I/O), all cores."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


# Talking to nodes ----------------------------------------------------------------------------------


class Node:
    """A running node with a kept-alive HTTP client and requests encoded beforehand."""

    def __init__(self, name: str, server: Server, app_id: str) -> None:
        self.name = name
        self.server = server
        self.app_id = app_id
        self.client = httpx.Client(
            base_url=server.base_url, timeout=60, params={"access_token": server.token}
        )

    def v3(self, path: str, body: bytes) -> dict[str, Any]:
        response = self.client.post(V3 + path, content=body, headers={"content-type": "application/json"})
        answer: dict[str, Any] = response.json()
        return answer

    def index_faces(self) -> int:
        text = self.client.get("/metrics").text
        found = re.search(rf'^renlian_index_faces{{app_id="{self.app_id}"}} (\S+)$', text, re.M)
        return int(float(found.group(1))) if found else 0

    def close(self) -> None:
        self.client.close()
        self.server.stop()


def v3_body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def has_faces(node: Node, faces: int) -> bool:
    return node.index_faces() == faces


def must(answer: dict[str, Any], what: str) -> dict[str, Any]:
    if answer.get("error_code", 0) != 0:
        raise RuntimeError(f"{what}: {answer}")
    return answer


def start_node(root: Path, name: str, env: dict[str, str], app: dict[str, str]) -> Node:
    (root / name).mkdir(parents=True, exist_ok=True)
    return Node(name, start_server(root / name, extra_env=env, app=app), app["app_id"])


def converge(nodes: list[Node], faces: int, seconds: float = 30.0) -> float:
    """Wait until every node's index holds `faces` faces of the app; seconds waited."""
    start = time.monotonic()
    while True:
        counts = [node.index_faces() for node in nodes]
        if all(count == faces for count in counts):
            return time.monotonic() - start
        if time.monotonic() - start > seconds:
            found = ", ".join(f"{n.name} {c}" for n, c in zip(nodes, counts, strict=True))
            raise RuntimeError(f"the nodes did not converge to {faces} faces in {seconds:.0f} s: {found}")
        time.sleep(0.02)


# 1. Propagation ------------------------------------------------------------------------------------


@dataclass
class Propagation:
    changes: int
    # (write, seen by) -> delays in ms from A's answer to B's answer that shows the change
    delays: dict[str, list[float]] = field(default_factory=dict)
    polls: dict[str, list[int]] = field(default_factory=dict)
    missed: dict[str, int] = field(default_factory=dict)
    not_current: int = 0  # B's searches answered 222302 (v2's 216300) during the rounds
    write_ms: dict[str, list[float]] = field(default_factory=dict)
    search_ms: list[float] = field(default_factory=list)
    metrics_ms: list[float] = field(default_factory=list)


def propagation(a: Node, b: Node, changes: int) -> Propagation:
    result = Propagation(changes)
    probe = b64("astronaut.jpg")
    must(
        a.v3(
            "/faceset/user/add",
            v3_body(
                image=b64("grace_hopper.jpg"),
                image_type="BASE64",
                group_id=PROPAGATION_GROUP,
                user_id="background",
            ),
        ),
        "background user/add",
    )
    base = 1
    converge([a, b], base)
    search = v3_body(image=probe, image_type="BASE64", group_id_list=PROPAGATION_GROUP, max_user_num=1)

    def top_user() -> str | None:
        """B's top user for the probe; None when B finds nobody; raises on another error."""
        answer = b.v3("/search", search)
        code = answer.get("error_code", 0)
        if code == 0:
            user: str = answer["result"]["user_list"][0]["user_id"]
            return user
        if code == INDEX_NOT_CURRENT:
            result.not_current += 1
            return str(INDEX_NOT_CURRENT)
        if code == NOT_FOUND:
            return None
        raise RuntimeError(f"search on B: {answer}")

    def shows(uid: str, present: bool) -> bool:
        """Whether B's search shows `uid` as it should now be (a refusal shows nothing)."""
        top = top_user()
        return top == uid if present else top not in (uid, str(INDEX_NOT_CURRENT))

    result.search_ms = timed(lambda: must(b.v3("/search", search), "search on B"), PLAIN_REQUESTS)
    result.metrics_ms = timed(b.index_faces, PLAIN_REQUESTS)
    log(
        f"  B alone: v3 search p50 {statistics.median(result.search_ms):.1f} ms, "
        f"/metrics p50 {statistics.median(result.metrics_ms):.1f} ms"
    )

    def follow(label: str, seen: Callable[[], bool], start: float) -> None:
        polls = 0
        while True:
            polls += 1
            if seen():
                result.delays.setdefault(label, []).append((time.perf_counter() - start) * 1000)
                result.polls.setdefault(label, []).append(polls)
                return
            if time.perf_counter() - start > PROPAGATION_LIMIT_S:
                result.missed[label] = result.missed.get(label, 0) + 1
                log(f"  {label}: not seen on B after {PROPAGATION_LIMIT_S:.0f} s")
                return

    for view in ("index", "search"):
        for i in range(changes):
            uid = f"{view}{i}"
            writes: list[tuple[str, str, dict[str, object], int, bool]] = [
                ("add", "/faceset/user/add", {"image": probe, "image_type": "BASE64"}, base + 1, True),
                ("delete", "/faceset/user/delete", {}, base, False),
            ]
            for kind, path, fields, faces, present in writes:
                body = v3_body(group_id=PROPAGATION_GROUP, user_id=uid, **fields)
                begin = time.perf_counter()
                answer = a.v3(path, body)
                answered = time.perf_counter()
                must(answer, f"user/{kind} {uid} on A")
                result.write_ms.setdefault(kind, []).append((answered - begin) * 1000)
                if view == "index":
                    follow(f"{kind}, B's index", partial(has_faces, b, faces), answered)
                else:
                    follow(f"{kind}, B's search", partial(shows, uid, present), answered)
        for label in (f"add, B's {view}", f"delete, B's {view}"):
            found = summary(result.delays.get(label, []))
            log(f"  {label}: p50 {found['p50']} ms, p99 {found['p99']} ms, max {found['max']} ms")
    return result


# 2. Throughput -------------------------------------------------------------------------------------


@dataclass
class Load:
    label: str
    nodes: int
    clients: int
    seconds: float
    requests: int
    errors: dict[str, int]
    latency: dict[str, float | None]
    node_cpu: list[float]  # cores used by each node over the run
    client_cpu: float  # cores used by this process (the clients) over the run
    postgres_cpu: float | None  # cores used by PostgreSQL's processes over the run (None: unknown)
    machine_cpu: float  # cores busy on the whole machine over the run (all of the above and the rest)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def enrol_gallery(
    url: str, a: Node, app_id: str, faces: int, model: str, dim: int, crop: bytes
) -> tuple[int, int]:
    """The four test photos through HTTP on A, and `faces` - 4 synthetic faces through the store;
    (real, synthetic)."""
    real = ("astronaut", "grace_hopper", "obama", "biden")
    for name in real:
        body = v3_body(image=b64(f"{name}.jpg"), image_type="BASE64", group_id=THROUGHPUT_GROUP, user_id=name)
        must(a.v3("/faceset/user/add", body), f"user/add {name}")
    count = max(0, faces - len(real))
    store_enrol(url, app_id, THROUGHPUT_GROUP, count, model, dim, crop, seed=faces, prefix="s")
    return len(real), count


def store_enrol(
    url: str, app_id: str, group: str, count: int, model: str, dim: int, crop: bytes, seed: int, prefix: str
) -> None:
    """`count` synthetic faces enrolled through the store's write path, each its own numbered change
    (uids prefix0, prefix1, ...)."""
    store = PostgresStore(url, pool_size=2)
    try:
        done = 0
        for block in synthetic(count, dim, seed=seed):
            for vector in block:
                uid = f"{prefix}{done}"
                sha = hashlib.sha256(uid.encode()).hexdigest()
                store.enrol(
                    app_id,
                    uid,
                    "",
                    [group],
                    [NewFace(sha, model, vector.astype(np.float32), crop)],
                    replace=False,
                    require_existing=False,
                    max_group_faces=300_000,
                )
                done += 1
    finally:
        store.close()


def closed_loop(
    label: str, nodes: list[Node], body: bytes, clients: int, seconds: float, postmaster: int | None
) -> Load:
    """`clients` threads, each sending its next request as soon as the last is answered, to the
    nodes in turn (one shared counter: round-robin over the whole stream)."""
    turn = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    errors: dict[str, int] = {}
    headers = {"content-type": "application/x-www-form-urlencoded"}
    for node in nodes:  # warm-up: each node's first requests pay for lazy set-up
        for _ in range(3):
            answer = node.client.post(IDENTIFY, content=body, headers=headers).json()
            assert answer["result"][0]["uid"] == "obama", answer
    deadline = 0.0

    def client() -> None:
        sessions = [
            httpx.Client(base_url=n.server.base_url, timeout=60, params={"access_token": n.server.token})
            for n in nodes
        ]
        try:
            while time.perf_counter() < deadline:
                with lock:
                    which = next(turn) % len(nodes)
                start = time.perf_counter()
                response = sessions[which].post(IDENTIFY, content=body, headers=headers)
                elapsed = (time.perf_counter() - start) * 1000
                answer = response.json()
                with lock:
                    if "error_code" in answer:
                        key = str(answer["error_code"])
                        errors[key] = errors.get(key, 0) + 1
                    elif answer["result"][0]["uid"] != "obama":
                        errors["wrong user"] = errors.get("wrong user", 0) + 1
                    else:
                        latencies.append(elapsed)
        finally:
            for session in sessions:
                session.close()

    node_cpu = [cpu_seconds(n.server.process.pid) for n in nodes]
    own_cpu = time.process_time()
    postgres_before, busy_before = postgres_cpu_seconds(postmaster), machine_busy_seconds()
    begin = time.perf_counter()
    deadline = begin + seconds
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    node_cores = [
        round((cpu_seconds(n.server.process.pid) - before) / elapsed, 2)
        for n, before in zip(nodes, node_cpu, strict=True)
    ]
    client_cores = round((time.process_time() - own_cpu) / elapsed, 2)
    postgres_after = postgres_cpu_seconds(postmaster)
    postgres_cores = (
        None
        if postgres_after is None or postgres_before is None
        else round((postgres_after - postgres_before) / elapsed, 2)
    )
    machine_cores = round((machine_busy_seconds() - busy_before) / elapsed, 2)
    return Load(
        label,
        len(nodes),
        clients,
        elapsed,
        len(latencies),
        errors,
        summary(latencies),
        node_cores,
        client_cores,
        postgres_cores,
        machine_cores,
    )


# 3. Start-up ---------------------------------------------------------------------------------------


def face_count(url: str) -> int:
    with psycopg.connect(url) as db:
        row = db.execute("SELECT COUNT(*) FROM faces").fetchone()
    return int(row[0]) if row else 0


def fill(
    url: str, app_id: str, count: int, model: str, dim: int, crop: bytes, group: str = STARTUP_GROUP
) -> float:
    """`count` synthetic faces in `group` of `app_id`, with COPY; seconds taken (with VACUUM). They
    take no change number: only nodes started afterwards hold them (they read the faces table)."""
    start = time.perf_counter()
    now = int(time.time())
    with psycopg.connect(url) as db:
        db.execute(
            "INSERT INTO face_groups (app_id, group_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (app_id, group),
        )
        db.commit()
        first = 0
        for block in synthetic(count, dim, seed=count, chunk=FILL_CHUNK):
            uids = [f"f{first + i}" for i in range(len(block))]
            shas = [hashlib.sha256(f"{app_id}/{uid}".encode()).hexdigest() for uid in uids]
            with db.cursor() as cursor:
                with cursor.copy("COPY users (app_id, group_id, uid, user_info) FROM STDIN") as copy:
                    for uid in uids:
                        copy.write_row((app_id, group, uid, ""))
                columns = "app_id, group_id, uid, image_sha256, model, embedding, created_at"
                with cursor.copy(f"COPY faces ({columns}) FROM STDIN") as copy:
                    for uid, sha, vector in zip(uids, shas, block, strict=True):
                        copy.write_row((app_id, group, uid, sha, model, vector.astype("<f4").tobytes(), now))
                with cursor.copy("COPY crops (app_id, image_sha256, jpeg) FROM STDIN") as copy:
                    for sha in shas:
                        copy.write_row((app_id, sha, crop))
            db.commit()
            first += len(block)
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("VACUUM ANALYZE")
    return time.perf_counter() - start


@dataclass
class Start:
    faces: int
    to_healthz_s: float
    index_load_s: float | None
    rss_mib: float
    peak_mib: float
    # The node's own CPU seconds (all its threads) up to /healthz, and the machine's 1-minute load
    # average then: on a shared machine the wall time says as much about the others as the node.
    cpu_s: float
    load_average: float


def timed_start(root: Path, env: dict[str, str], label: str) -> Start:
    """`renlian serve` from process start to the first /healthz 200; its memory then; stopped."""
    port = free_port()
    folder = root / label  # a label used again starts on the same data directory
    folder.mkdir(parents=True, exist_ok=True)
    server_log = folder / "server.log"
    environment = {
        **os.environ,
        **env,
        "RENLIAN_PORT": str(port),
        "RENLIAN_DATA_DIR": str(folder / "data"),
    }
    url = f"http://127.0.0.1:{port}/healthz"
    with server_log.open("ab") as sink:
        begin = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "renlian.cli", "serve"],
            env=environment,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}:\n{server_log.read_text()[-3000:]}")
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.perf_counter() - begin > START_LIMIT_S:
                raise RuntimeError(f"server not healthy after {START_LIMIT_S:.0f} s")
            time.sleep(HEALTH_POLL_S)
        elapsed = time.perf_counter() - begin
        rss, peak = rss_mb(process.pid)
        cpu = cpu_seconds(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=60)
    loaded = re.findall(r"face index: (\d+) faces loaded in ([\d.]+) s", server_log.read_text())
    faces, load_s = (int(loaded[-1][0]), float(loaded[-1][1])) if loaded else (-1, None)
    return Start(
        faces, round(elapsed, 2), load_s, round(rss, 1), round(peak, 1), round(cpu, 2), os.getloadavg()[0]
    )


# 4. Write race -------------------------------------------------------------------------------------

RACE_GROUP = "race"
# Enrolled in turn; each enrolment sends its own copy (a unique file: the group keeps one face per
# photo file) with a strip of black and white 8x8 blocks along the top edge, away from the face.
RACE_PHOTOS = ("obama", "biden", "grace_hopper", "astronaut")
RACE_PROBE = "obama.jpg"
RACE_BITS = 20
# Bounds beside the deadline: requests per client thread, and the wait for the nodes to settle.
RACE_MAX_REQUESTS = 50_000
RACE_SETTLE_S = 30.0
# /metrics of each node is read this often during the race, for the largest sync lag it shows.
RACE_SAMPLE_S = 0.5
# Server-log lines shown per node (all are counted).
LOG_LINES_SHOWN = 40


@dataclass
class RaceClient:
    node: str
    kind: str  # "enrol" or "search"
    requests: int = 0
    succeeded: int = 0  # error_code 0: enrolments acknowledged, searches that named a user
    codes: dict[str, int] = field(default_factory=dict)  # the other answers, by error_code
    latency_ms: list[float] = field(default_factory=list)
    refused_at: list[float] = field(default_factory=list)  # 222302s, seconds into the race


def metric_value(text: str, name: str, labels: str = "") -> float | None:
    """A sample of /metrics' exposition; a counter's name may carry `_total` there."""
    label = re.escape("{" + labels + "}") if labels else ""
    found = re.search(rf"^{re.escape(name)}(?:_total)?{label} (\S+)$", text, re.M)
    return float(found.group(1)) if found else None


def sync_metrics(node: Node) -> dict[str, float | None]:
    text = node.client.get("/metrics").text
    return {
        "reloads": metric_value(text, "renlian_index_sync_reloads"),
        "changes_applied": metric_value(text, "renlian_index_sync_changes"),
        "lag_s": metric_value(text, "renlian_index_sync_lag_seconds"),
        "faces": metric_value(text, "renlian_index_faces", f'app_id="{node.app_id}"'),
    }


def app_faces(url: str, app_id: str) -> tuple[int, int]:
    """The app's faces in the database, and its latest change number."""
    with psycopg.connect(url) as db:
        faces = db.execute("SELECT COUNT(*) FROM faces WHERE app_id = %s", (app_id,)).fetchone()
        number = db.execute("SELECT seq FROM face_sequences WHERE app_id = %s", (app_id,)).fetchone()
    return (int(faces[0]) if faces else 0), (int(number[0]) if number else 0)


class Variants:
    """Unique JPEG files of the race photos: variant n is photo n mod 4 with n's bits drawn along
    its top edge. Thread-safe; every file returned is new (by sha256)."""

    def __init__(self) -> None:
        self._images = [read_bgr(PHOTOS / f"{name}.jpg") for name in RACE_PHOTOS]
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def photo(self, number: int) -> tuple[str, str]:
        """(the photo's name, its file as base64), or ValueError where it collides."""
        name = RACE_PHOTOS[number % len(RACE_PHOTOS)]
        image = self._images[number % len(RACE_PHOTOS)].copy()
        for bit in range(RACE_BITS):
            image[:8, bit * 8 : bit * 8 + 8] = 255 if number >> bit & 1 else 0
        data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
        digest = hashlib.sha256(data).hexdigest()
        with self._lock:
            if digest in self._seen:
                raise ValueError(f"variant {number} repeats an earlier file")
            self._seen.add(digest)
        return name, base64.b64encode(data).decode()


def settle(nodes: list[Node], url: str, app_id: str, seconds: float) -> tuple[int, list[int], float]:
    """Wait (bounded) until every node's index holds the database's faces of the app; the
    database's count, each node's, and the seconds waited. Does not raise: a difference is a
    finding."""
    start = time.monotonic()
    while True:
        database, _ = app_faces(url, app_id)
        counts = [node.index_faces() for node in nodes]
        if all(count == database for count in counts) or time.monotonic() - start > seconds:
            return database, counts, time.monotonic() - start
        time.sleep(0.1)


def sync_log_lines(node: Node) -> list[str]:
    """The node's log lines that mention index sync (its log stays in the bench's temp dir)."""
    path = node.server.data_dir.parent / "server.log"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if "index sync" in line.lower()]


def write_race(
    url: str, nodes: list[Node], app_id: str, seconds: float, postmaster: int | None
) -> dict[str, Any]:
    """Two enrolling clients (one per node) and two searching clients (one per node), all on one
    app, for `seconds`; the nodes' reloads and refusals, and whether each ends equal to the
    database."""
    variants = Variants()
    search = v3_body(image=b64(RACE_PROBE), image_type="BASE64", group_id_list=RACE_GROUP, max_user_num=1)
    for node in nodes:  # warm-up: the first search pays for lazy set-up; nothing is enrolled yet
        for _ in range(2):
            answer = node.v3("/search", search)
            if answer.get("error_code") not in (0, NOT_FOUND):
                raise RuntimeError(f"warm-up search on {node.name}: {answer}")
    before = {node.name: sync_metrics(node) for node in nodes}
    faces_before, number_before = app_faces(url, app_id)
    log(f"  before: database {faces_before} faces (change number {number_before}); nodes {before}")
    clients = [RaceClient(node.name, kind) for kind in ("enrol", "search") for node in nodes]
    lag_max = {node.name: 0.0 for node in nodes}
    stop_sampling = threading.Event()
    begin = 0.0
    deadline = 0.0

    def run(client: RaceClient, node: Node, which: int) -> None:
        session = httpx.Client(
            base_url=node.server.base_url, timeout=60, params={"access_token": node.server.token}
        )
        headers = {"content-type": "application/json"}
        try:
            for i in range(RACE_MAX_REQUESTS):
                if time.perf_counter() >= deadline:
                    return
                if client.kind == "enrol":
                    try:
                        _, image = variants.photo(i * len(nodes) + which)
                    except ValueError as exc:
                        client.codes["repeated file (not sent)"] = (
                            client.codes.get("repeated file (not sent)", 0) + 1
                        )
                        log(f"  {exc}")
                        continue
                    body = v3_body(
                        image=image, image_type="BASE64", group_id=RACE_GROUP, user_id=f"{node.name}{i}"
                    )
                    path = "/faceset/user/add"
                else:
                    body, path = search, "/search"
                start = time.perf_counter()
                try:
                    answer = session.post(V3 + path, content=body, headers=headers).json()
                except (httpx.HTTPError, ValueError) as exc:  # no answer, or not JSON: counted
                    answer = {"error_code": type(exc).__name__}
                answered = time.perf_counter()
                client.requests += 1
                code = answer.get("error_code", 0)
                if code == 0:
                    client.succeeded += 1
                    client.latency_ms.append((answered - start) * 1000)
                else:
                    client.codes[str(code)] = client.codes.get(str(code), 0) + 1
                    if code == INDEX_NOT_CURRENT:
                        client.refused_at.append(round(answered - begin, 2))
        finally:
            session.close()

    def sample() -> None:
        while not stop_sampling.wait(RACE_SAMPLE_S):
            for node in nodes:
                try:
                    lag = sync_metrics(node)["lag_s"]
                except httpx.HTTPError:
                    continue
                if lag is not None:
                    lag_max[node.name] = max(lag_max[node.name], lag if lag >= 0 else float("inf"))

    node_cpu = [cpu_seconds(n.server.process.pid) for n in nodes]
    own_cpu = time.process_time()
    postgres_before, busy_before = postgres_cpu_seconds(postmaster), machine_busy_seconds()
    begin = time.perf_counter()
    deadline = begin + seconds
    threads = [
        threading.Thread(target=run, args=(client, node, which))
        for client in clients
        for which, node in enumerate(nodes)
        if node.name == client.node
    ]
    sampler = threading.Thread(target=sample)
    for thread in [*threads, sampler]:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    stop_sampling.set()
    sampler.join()
    node_cores = [
        round((cpu_seconds(n.server.process.pid) - cpu) / elapsed, 2)
        for n, cpu in zip(nodes, node_cpu, strict=True)
    ]
    client_cores = round((time.process_time() - own_cpu) / elapsed, 2)
    postgres_after = postgres_cpu_seconds(postmaster)
    postgres_cores = (
        None
        if postgres_after is None or postgres_before is None
        else round((postgres_after - postgres_before) / elapsed, 2)
    )
    machine_cores = round((machine_busy_seconds() - busy_before) / elapsed, 2)
    database, counts, settled_s = settle(nodes, url, app_id, RACE_SETTLE_S)
    after = {node.name: sync_metrics(node) for node in nodes}
    _, number_after = app_faces(url, app_id)
    acknowledged = sum(c.succeeded for c in clients if c.kind == "enrol")
    per_node: dict[str, dict[str, Any]] = {}
    for which, node in enumerate(nodes):
        enrol = next(c for c in clients if c.node == node.name and c.kind == "enrol")
        searcher = next(c for c in clients if c.node == node.name and c.kind == "search")
        lines = sync_log_lines(node)
        reloads = (after[node.name]["reloads"] or 0) - (before[node.name]["reloads"] or 0)
        applied = (after[node.name]["changes_applied"] or 0) - (before[node.name]["changes_applied"] or 0)
        per_node[node.name] = {
            "reloads_before": before[node.name]["reloads"],
            "reloads_after": after[node.name]["reloads"],
            "reloads": reloads,
            "changes_applied": applied,
            "enrolments": enrol.requests,
            "enrolments_acknowledged": enrol.succeeded,
            "enrol_errors": enrol.codes,
            "enrol_ms": summary(enrol.latency_ms),
            "searches": searcher.requests,
            "searches_succeeded": searcher.succeeded,
            "searches_refused": searcher.codes.get(str(INDEX_NOT_CURRENT), 0),
            "search_errors": searcher.codes,
            "search_ms": summary(searcher.latency_ms),
            "refused_at_s": searcher.refused_at[:50],
            "lag_max_s": lag_max[node.name],
            "final_faces": counts[which],
            "equal_to_database": counts[which] == database,
            "cores": node_cores[which],
            "sync_log_lines": len(lines),
            "sync_log": lines[:LOG_LINES_SHOWN],
        }
    return {
        "faces_before": faces_before,
        "change_number_before": number_before,
        "seconds": round(elapsed, 1),
        "enrolments_acknowledged": acknowledged,
        "database_faces": database,
        "database_faces_expected": faces_before + acknowledged,
        "change_number_after": number_after,
        "settled_s": round(settled_s, 2),
        "client_cores": client_cores,
        "postgres_cores": postgres_cores,
        "machine_cores": machine_cores,
        "load_average": os.getloadavg(),
        "nodes": per_node,
    }


# Reporting -----------------------------------------------------------------------------------------


def tables(report: dict[str, Any]) -> list[str]:
    p = report["propagation"]
    lines = [
        f"Measured {report['machine']}; PostgreSQL {report['postgres']}, on the same machine; "
        f"recognizer {report['recognizer']} ({report['dim']}-d); each node "
        f"{report['workers_x_threads'][0]} inference worker(s) x {report['workers_x_threads'][1]} threads "
        f"(the defaults here); `python -m bench.fleet{report['arguments']}`.",
        "",
        f"Propagation, {p['changes']} adds and {p['changes']} deletes per row, node A -> node B, "
        "from A's answer to the first answer of B that shows the change:",
        "",
        "| write on A | seen in B's | p50 ms | p99 ms | max ms | B requests per change, mean "
        "| shown by B's first request | missed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, found in p["delays"].items():
        write, view = label.split(", B's ")
        lines.append(
            f"| {write} | {view} | {found['p50']} | {found['p99']} | {found['max']} | "
            f"{p['polls_mean'][label]:.2f} | {p['first_poll_share'][label]:.0%} | "
            f"{p['missed'].get(label, 0)} |"
        )
    lines += [
        "",
        f"In the same run, B alone: v3 search p50 {p['search_ms']['p50']} ms (p99 "
        f"{p['search_ms']['p99']}), GET /metrics p50 {p['metrics_ms']['p50']} ms (p99 "
        f"{p['metrics_ms']['p99']}); the writes on A: user/add p50 {p['write_ms']['add']['p50']} ms, "
        f"user/delete p50 {p['write_ms']['delete']['p50']} ms. B's searches answered {INDEX_NOT_CURRENT} "
        f"(v3's 216300: index not known to be current) {p['not_current']} times during the rounds.",
        "",
    ]
    t = report["throughput"]
    lines += [
        f"Identify throughput: v2 identify of obama.jpg (user_top_num=1) in a group of {t['faces']:,} faces "
        f"({t['real']} real photos enrolled over HTTP, {t['synthetic']} synthetic unit vectors written "
        f"through PostgresStore.enrol), {t['clients']} closed-loop client threads in the bench's process, "
        f"{t['seconds']:.0f} s per row:",
        "",
        "| nodes (inference workers x threads) | requests | req/s | p50 ms | p99 ms | errors "
        "| cores used: each node / the clients / PostgreSQL / the whole machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for load in t["runs"]:
        label = load["label"]
        errors = ", ".join(f"{k}: {v}" for k, v in load["errors"].items()) or "0"
        lines.append(
            f"| {label} | {load['requests']} | {load['requests'] / load['seconds']:.1f} | "
            f"{load['latency']['p50']} | {load['latency']['p99']} | {errors} | "
            f"{' + '.join(f'{c:.2f}' for c in load['node_cpu'])} / {load['client_cpu']:.2f} / "
            f"{'?' if load['postgres_cpu'] is None else load['postgres_cpu']} / "
            f"{load['machine_cpu']:.2f} of {report['cores']} |"
        )
    s = report["startup"]
    lines += [
        "",
        f"Start-up: `renlian serve` from process start to the first /healthz 200 (polled every "
        f"{HEALTH_POLL_S * 1000:.0f} ms), reading every face from PostgreSQL; RSS and peak at that moment. "
        f"The {s['filled']:,} faces were written with COPY in {s['fill_s']:.0f} s (with VACUUM ANALYZE).",
        "",
        "| faces in the database | start | to /healthz s | index load s (server log) | RSS MiB | peak MiB |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("before", "after"):
        for i, start in enumerate(s[key], 1):
            lines.append(
                f"| {start['faces']:,} | {i} | {start['to_healthz_s']:.2f} | {start['index_load_s']} | "
                f"{start['rss_mib']:.0f} | {start['peak_mib']:.0f} |"
            )
    lines += [
        "",
        f"Memory a face costs a node: ({s['rss_after_mib']:.0f} - {s['rss_before_mib']:.0f}) MiB / "
        f"({s['faces_after']:,} - {s['faces_before']:,}) faces = {s['bytes_per_face']:.0f} bytes "
        "(median RSS at /healthz of each set of starts).",
    ]
    return lines


def snapshot_tables(report: dict[str, Any]) -> list[str]:
    s = report["own_snapshot"]
    lines = [
        f"Measured {report['date']}, {report['cores']} cores ({report['cpu']}), commit {report['commit']}; "
        f"PostgreSQL {report['postgres']}, on the same machine; recognizer {report['recognizer']} "
        f"({report['dim']}-d); `python -m bench.fleet{report['arguments']}`. One app, {s['faces']:,} "
        f"faces in one group (written with COPY in {s['fill_s']:.0f} s); each start timed from process "
        f"start to the first /healthz 200 (polled every {HEALTH_POLL_S * 1000:.0f} ms), then stopped "
        "cleanly; the index load is what the node logs.",
        "",
        "| start | faces loaded | to /healthz s | its CPU s to /healthz | index load s (server log) "
        "| RSS MiB | peak MiB | load average |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in s["starts"]:
        lines.append(
            f"| {run['label']} | {run['faces']:,} | {run['to_healthz_s']:.2f} | {run['cpu_s']:.2f} | "
            f"{run['index_load_s']} | {run['rss_mib']:.0f} | {run['peak_mib']:.0f} | "
            f"{run['load_average']:.1f} |"
        )
    return lines


def race_tables(report: dict[str, Any]) -> list[str]:
    r = report["write_race"]
    nodes = r["nodes"]
    lines = [
        f"Measured {report['date']}, {report['cores']} cores ({report['cpu']}), commit {report['commit']}; "
        f"PostgreSQL {report['postgres']}, on the same machine; recognizer {report['recognizer']} "
        f"({report['dim']}-d); each node {report['workers_x_threads'][0]} inference worker(s) x "
        f"{report['workers_x_threads'][1]} threads (the defaults); "
        f"`python -m bench.fleet{report['arguments']}`.",
        "",
        f"Write race: one app holding {r['faces_before']:,} faces in one group (synthetic unit vectors "
        f"written with COPY in {r['fill_s']:.0f} s before the nodes started), two nodes. For "
        f"{r['seconds']:.0f} s, four closed-loop clients in the bench's process: on each node one "
        "enrolling new users into that group (v3 user/add, each a unique copy of one of the 4 test "
        f"photos) and one searching it (v3 search of {RACE_PROBE}, max_user_num=1).",
        "",
        "| node | reloads (counter before -> after) | changes applied | enrolments acknowledged "
        "/ sent | user/add p50 ms | searches succeeded / sent | refused (222302) | other answers "
        "| search p50 ms | largest sync lag seen s | index faces at the end |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, n in nodes.items():
        others = {code: count for code, count in n["search_errors"].items() if code != str(INDEX_NOT_CURRENT)}
        others.update({f"user/add {code}": count for code, count in n["enrol_errors"].items()})
        lines.append(
            f"| {name} | {n['reloads']:.0f} ({n['reloads_before']:.0f} -> {n['reloads_after']:.0f}) | "
            f"{n['changes_applied']:.0f} | {n['enrolments_acknowledged']} / {n['enrolments']} | "
            f"{n['enrol_ms']['p50']} | {n['searches_succeeded']} / {n['searches']} | "
            f"{n['searches_refused']} | {', '.join(f'{k}: {v}' for k, v in others.items()) or '0'} | "
            f"{n['search_ms']['p50']} | {n['lag_max_s']:.2f} | {n['final_faces']:,} "
            f"({'equal to' if n['equal_to_database'] else 'NOT equal to'} the database's) |"
        )
    lines += [
        "",
        f"The database at the end: {r['database_faces']:,} faces in the app ({r['faces_before']:,} + "
        f"{r['enrolments_acknowledged']} acknowledged = {r['database_faces_expected']:,}), change number "
        f"{r['change_number_before']} -> {r['change_number_after']}; both nodes' counts read "
        f"{r['settled_s']:.1f} s after the clients stopped. Cores used over the race: nodes "
        f"{' + '.join(format(n['cores'], '.2f') for n in nodes.values())} / the clients "
        f"{r['client_cores']:.2f} / "
        f"PostgreSQL {'?' if r['postgres_cores'] is None else r['postgres_cores']} / the whole machine "
        f"{r['machine_cores']:.2f} of {report['cores']}. Node log lines mentioning 'index sync': "
        + ", ".join(f"{name} {n['sync_log_lines']}" for name, n in nodes.items())
        + ".",
    ]
    return lines


class Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """--help with the module's description as written and each option's default."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=Help)
    parser.epilog = "\n".join(__doc__.splitlines()[5:])
    parser.add_argument(
        "--database-url", help="an existing empty PostgreSQL database to use instead of a throwaway cluster"
    )
    parser.add_argument(
        "--scenario",
        choices=SCENARIOS,
        default="parts",
        help="parts: propagation, throughput and start-up (1-3); write-race: part 4 alone",
    )
    parser.add_argument("--changes", type=int, default=100, help="adds (and deletes) per propagation round")
    parser.add_argument(
        "--faces",
        type=int,
        help=f"faces in the throughput group (default {DEFAULT_FACES['parts']:,}), or in the write "
        f"race's app before it begins (default {DEFAULT_FACES['write-race']:,})",
    )
    parser.add_argument("--clients", type=int, default=4, help="closed-loop client threads")
    parser.add_argument(
        "--seconds",
        type=float,
        help=f"duration of each throughput run (default {DEFAULT_SECONDS['parts']:.0f}), or of the "
        f"write race (default {DEFAULT_SECONDS['write-race']:.0f})",
    )
    parser.add_argument("--startup-faces", type=int, default=100_000, help="faces for the start-up runs")
    parser.add_argument("--starts", type=int, default=3, help="timed starts with those faces")
    parser.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="PATH",
        help="the results as one JSON object: alone, printed instead of the tables; with a path, "
        "written there (and the tables printed)",
    )
    parser.add_argument("--write-docs", action="store_true", help="write the tables into docs/scale-out.md")
    args = parser.parse_args()
    defaults = {a.dest: a.default for a in parser._actions if a.dest not in ("help", "json", "write_docs")}
    arguments = "".join(
        f" --{name.replace('_', '-')} {getattr(args, name)}"
        for name, default in defaults.items()
        if getattr(args, name) != default and name != "database_url"
    )
    if args.faces is None:
        args.faces = DEFAULT_FACES[args.scenario]
    if args.seconds is None:
        args.seconds = DEFAULT_SECONDS[args.scenario]
    settings = Settings()
    model = analyzer(settings.recognizer, threads=settings.threads_per_worker)
    dim, model_name = model.embedder.dim, model.embedder.name
    _, crop_image = model.enrolment_face(read_bgr(PHOTOS / "astronaut.jpg"))
    crop = cv2.imencode(".jpg", crop_image, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    del model
    report: dict[str, Any] = {
        "machine": machine(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "date": date.today().isoformat(),
        "commit": short_commit(),
        "recognizer": model_name,
        "dim": dim,
        "workers_x_threads": [settings.inference_workers, settings.threads_per_worker],
        "arguments": arguments,
    }
    with ExitStack() as cleanup, tempfile.TemporaryDirectory(prefix="renlian-bench-fleet-") as scratch:
        root = Path(scratch)
        if args.database_url:
            url = args.database_url
            if face_count_or_none(url):
                raise SystemExit(f"{masked(url)} already holds faces: give an empty database")
            postmaster = None
        else:
            found = binaries()
            if found is None:
                raise SystemExit("PostgreSQL's initdb is not installed (apt-get install postgresql)")
            cluster = Cluster(found)
            cleanup.callback(cluster.stop)
            url = cluster.new_database()
            postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
        report["postgres"] = postgres_version(url) + ("" if args.database_url else ", throwaway cluster")
        env = {"RENLIAN_DATABASE_URL": url}
        nodes: list[Node] = []

        def stop_nodes() -> None:
            while nodes:
                nodes.pop().close()

        cleanup.callback(stop_nodes)
        if args.scenario == "startup":
            app = create_app_in(root, env, "startup")
            log(f"PostgreSQL {report['postgres']} at {masked(url)}; app {app['app_id']}")
            log(f"5. start-up from a node's snapshot: filling {args.startup_faces:,} faces")
            fill_s = fill(url, app["app_id"], args.startup_faces, model_name, dim, crop)
            log(f"  filled in {fill_s:.1f} s")
            runs: list[dict[str, Any]] = []

            def start_once(label: str, folder: str) -> None:
                runs.append({"label": label, **asdict(timed_start(root, env, folder))})
                log(f"  {label}: {runs[-1]}")

            start_once("first start, no snapshot: reads every face", "node")
            for _ in range(args.starts - 1):
                start_once("again, from its snapshot", "node")
            store_enrol(
                url, app["app_id"], STARTUP_GROUP, args.changes, model_name, dim, crop, seed=1, prefix="late"
            )
            start_once(f"from its snapshot, {args.changes} changes made since by another process", "node")
            start_once("a new node (empty data directory)", "fresh")
            report["own_snapshot"] = {
                "faces": args.startup_faces,
                "fill_s": round(fill_s, 1),
                "changes": args.changes,
                "starts": runs,
            }
        elif args.scenario == "write-race":
            app = create_app_in(root, env, "race")
            log(f"PostgreSQL {report['postgres']} at {masked(url)}; app {app['app_id']}")
            log(f"4. write race: filling {args.faces:,} faces")
            fill_s = fill(url, app["app_id"], args.faces, model_name, dim, crop, group=RACE_GROUP)
            log(f"  filled in {fill_s:.1f} s; starting nodes a and b")
            nodes.append(start_node(root, "a", env, app))
            nodes.append(start_node(root, "b", env, app))
            log(f"  racing for {args.seconds:.0f} s")
            try:
                raced = write_race(url, nodes, app["app_id"], args.seconds, postmaster)
            except BaseException:
                for node in nodes:  # what the nodes' follower said, before the temp dir goes
                    for line in sync_log_lines(node)[-LOG_LINES_SHOWN:]:
                        log(f"  {node.name}: {line}")
                raise
            raced["fill_s"] = round(fill_s, 1)
            report["write_race"] = raced
            for name, node in raced["nodes"].items():
                log(
                    f"  node {name}: {node['reloads']:.0f} reloads, {node['searches_refused']} searches "
                    f"refused, {node['searches_succeeded']} succeeded, {node['enrolments_acknowledged']} "
                    f"enrolments acknowledged, {node['final_faces']} faces "
                    f"(database {raced['database_faces']})"
                )
                log(f"  node {name}'s log, {node['sync_log_lines']} lines mentioning 'index sync':")
                for line in node["sync_log"]:
                    log(f"    {line}")
            stop_nodes()
        else:
            app = create_app_in(root, env, "fleet")
            log(f"PostgreSQL {report['postgres']} at {masked(url)}; app {app['app_id']}")

            nodes.append(start_node(root, "a", env, app))
            nodes.append(start_node(root, "b", env, app))
            a, b = nodes
            log("1. propagation")
            moved = propagation(a, b, args.changes)
            report["propagation"] = {
                "changes": args.changes,
                "delays": {label: summary(samples) for label, samples in moved.delays.items()},
                "polls_mean": {label: statistics.mean(polls) for label, polls in moved.polls.items()},
                "first_poll_share": {
                    label: sum(1 for n in polls if n == 1) / len(polls)
                    for label, polls in moved.polls.items()
                },
                "missed": moved.missed,
                "not_current": moved.not_current,
                "write_ms": {kind: summary(samples) for kind, samples in moved.write_ms.items()},
                "search_ms": summary(moved.search_ms),
                "metrics_ms": summary(moved.metrics_ms),
            }

            log("2. throughput")
            real, fake = enrol_gallery(url, a, app["app_id"], args.faces, model_name, dim, crop)
            # The background user of part 1, the real photos and the synthetic faces.
            converge([a, b], 1 + real + fake)
            probe = urllib.parse.urlencode(
                {"images": b64("obama.jpg"), "group_id": THROUGHPUT_GROUP, "user_top_num": "1"}
            ).encode()
            workers, threads = settings.inference_workers, settings.threads_per_worker
            cores = os.cpu_count() or 1
            plans: list[tuple[str, list[Node]]] = [
                (f"1 node (A), {workers} x {threads}; B idle", [a]),
                (f"2 nodes (A, B) round-robin, {workers} x {threads} each", [a, b]),
            ]
            if (workers, threads) != (cores, 1):
                # The same cores as one node that runs a request per core: what the default leaves idle.
                wide = {**env, "RENLIAN_INFERENCE_WORKERS": str(cores), "RENLIAN_THREADS_PER_WORKER": "1"}
                nodes.append(start_node(root, "c", wide, app))
                converge([nodes[-1]], 1 + real + fake)
                plans.append((f"1 node (C), {cores} x 1; A, B idle", [nodes[-1]]))
            runs = []
            for label, chosen in plans:
                load = closed_loop(label, chosen, probe, args.clients, args.seconds, postmaster)
                runs.append(asdict(load))
                log(
                    f"  {label}: {load.rate:.1f} req/s, p50 {load.latency['p50']} ms, "
                    f"p99 {load.latency['p99']} ms, errors {load.errors}, cores: nodes {load.node_cpu}, "
                    f"clients {load.client_cpu}, PostgreSQL {load.postgres_cpu}, machine {load.machine_cpu}"
                )
            report["throughput"] = {
                "faces": real + fake,
                "real": real,
                "synthetic": fake,
                "clients": args.clients,
                "seconds": args.seconds,
                "runs": runs,
            }
            stop_nodes()

            log("3. start-up")
            before = [timed_start(root, env, f"before{i}") for i in range(args.starts)]
            for start in before:
                log(f"  {start}")
            existing = face_count(url)
            wanted = max(0, args.startup_faces - existing)
            startup_app = create_app_in(root, env, "startup")
            fill_s = fill(url, startup_app["app_id"], wanted, model_name, dim, crop)
            log(f"  filled {wanted} faces in {fill_s:.1f} s")
            after = [timed_start(root, env, f"after{i}") for i in range(args.starts)]
            for start in after:
                log(f"  {start}")
            rss_before = statistics.median(s.rss_mib for s in before)
            rss_after = statistics.median(s.rss_mib for s in after)
            faces_after = face_count(url)
            report["startup"] = {
                "filled": wanted,
                "fill_s": round(fill_s, 1),
                "before": [asdict(s) for s in before],
                "after": [asdict(s) for s in after],
                "faces_before": existing,
                "faces_after": faces_after,
                "rss_before_mib": rss_before,
                "rss_after_mib": rss_after,
                "bytes_per_face": (rss_after - rss_before) * 1024 * 1024 / max(1, faces_after - existing),
            }
    racing = args.scenario == "write-race"
    if args.scenario == "startup":
        lines = snapshot_tables(report)
    else:
        lines = race_tables(report) if racing else tables(report)
    if args.json == "-":
        print(json.dumps(report, indent=2))
    else:
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        print("\n".join(lines))
    if args.write_docs:
        section = {"parts": "fleet", "write-race": "fleet-write-race", "startup": "fleet-startup"}
        write_section(Path("docs/scale-out.md"), section[args.scenario], lines)


def face_count_or_none(url: str) -> int:
    """Faces in the database, 0 where renlian's tables are not there yet."""
    with psycopg.connect(url) as db:
        row = db.execute("SELECT to_regclass('faces') IS NOT NULL").fetchone()
        if not row or not row[0]:
            return 0
    return face_count(url)


def create_app_in(root: Path, env: dict[str, str], name: str) -> dict[str, str]:
    """`renlian apps create` with the database URL, as an operator would run it."""
    result = subprocess.run(
        [sys.executable, "-m", "renlian.cli", "apps", "create", name, "--data-dir", str(root / "cli")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, **env},
    )
    created: dict[str, str] = json.loads(result.stdout)
    return created


if __name__ == "__main__":
    main()
