"""Real processes, faults and the scenario runner of the randomized consistency test (issue 20, item 8).

A scenario is one seed: a random sequence of writes (v3 user/add, update, delete, copy, group/add,
group/delete, face/delete; v2 user/add and delete; `renlian import` run beside the servers; now and
then a burst of every node enrolling into one app at once) and searches (v3 search, multi-search,
v2 identify) sent to real `renlian serve` processes, with faults injected at random steps.
tests/consistency_model.py is the truth: a write enters the model only when the server
acknowledged it (error_code 0), or when a write whose answer was lost or refused during a fault is
found in the store afterwards (settling it reads the store through a healthy node).

Two deployments: "fleet" (two nodes on one PostgreSQL, each reaching it through a TCP proxy that the
test can stall) and "sqlite" (one node on SQLite, with `renlian import` writing into its data
directory while it runs). Faults: kill9 (a node killed with SIGKILL, sometimes with a write in
flight, then started again on the same data), pg-stop (PostgreSQL stopped, then started), stall
(the proxy of one node stops forwarding bytes for 1-2 s), restart (a clean stop with SIGTERM, which
saves the index snapshots, and a start) and rows-full (the server's test hook
RENLIAN_FAULT_ROWS_FULL=<path>: while a file exists there, every write to that node's index rows
files fails with ENOSPC).

Properties (each violation has a kind, printed with the seed, the step and the last operations):

- not-visible: an acknowledged write was not shown by a node within the freshness promise
  (RENLIAN_INDEX_MAX_LAG_SECONDS after the acknowledgement, plus STALE_SLACK); the acknowledging
  node must show it at once.
- deleted-returned: a search returned a face or user after its deletion was acknowledged (same
  window).
- brute-force: a search answer that no allowed state of the model explains (users, order, scores
  within TOLERANCE, user_info, error codes).
- mixed-read: an answer that two different allowed states explain together and no one state does:
  the endpoint checked that its groups exist in one and searched another.
- refused: a search refused (216300/222302) or unanswered while no fault touched the node and the
  settle time after the last one had passed.
- quota: an app with `--total N` admitted more than N requests across the nodes.
- store: the store (read through the API) differs from the model: an acknowledged write lost, or a
  change nobody acknowledged.
- answer: a write answered a different code than the model predicts.
- write-refused / write-answer: a write refused outside faults; a write answered 216300/222302
  although it committed, while the database was healthy.
- index-count: a node's renlian_index_faces for an app differs from the model past the promise.
- reload: a node's renlian_index_sync_reloads grew while no fault was active or settling (a node
  must never reload an app because its own or a concurrent write advanced it).
- recovery, import: a node that did not come back; an import that hung, or failed outside faults.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import Server, start_server, token_for
from tests.consistency_model import (
    DB_ERRORS,
    OK,
    TOLERANCE,
    Answer,
    FacePool,
    History,
    Hit,
    InfoCheck,
    Photo,
    Query,
    State,
    User,
    Write,
    apply,
    changed_faces,
    compare,
    expect,
    scorer,
)
from tests.postgres_cluster import Cluster

V3 = "/rest/2.0/face/v3"
V2 = "/rest/2.0/face/v2"
# The promise under test, as the servers read it from the same environment.
LAG = float(os.environ.get("RENLIAN_INDEX_MAX_LAG_SECONDS", "1"))
# Request transit and scheduling on a loaded machine: a node may answer without a write that was
# acknowledged at most LAG + STALE_SLACK seconds before the search was sent.
STALE_SLACK = 0.25
# How long after an acknowledgement a node is polled before it must show the write (the window
# rule above decides violations; this only bounds the loop).
VISIBLE_POLL = LAG + STALE_SLACK + 1.0
# After a fault ends (and the node answers again), refusals are excused for this long.
SETTLE = LAG + 1.0
# After a rows-full fault ends, the node rebuilds the groups it could not write by itself.
ROWS_SETTLE = LAG + 2.0
# A node that does not answer a read this long after a fault ended has not recovered.
RECOVERY_LIMIT = 20.0
REQUEST_TIMEOUT = 30.0
IMPORT_TIMEOUT = 120.0
# Names the random writes draw from: few, so that writes meet each other's users and groups.
GROUPS = ("g0", "g1", "g2", "g3", "g4")
UIDS = ("u0", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9")
WRITE_WEIGHTS = {
    "v3-add": 18,
    "v3-update": 5,
    "v3-delete": 6,
    "v3-copy": 5,
    "v3-group-add": 2,
    "v3-group-delete": 3,
    "v3-face-delete": 5,
    "v2-add": 7,
    "v2-delete": 4,
}
SEARCH_WEIGHT = 30
# Now and then every node enrols into one app at once while searches run beside them (the issue's
# "two clients enrolling into one app"): BURST_WRITES v3 user/add per node.
BURST_WEIGHT = 4
BURST_WRITES = 3
# "restart" is a clean stop (SIGTERM: the server saves its snapshots) and start, beside kill9.
FLEET_FAULTS = ("kill9", "pg-stop", "stall", "rows-full", "restart")
SQLITE_FAULTS = ("kill9", "restart", "rows-full")
# Sabotage runs corrupt the harness on purpose, to show that its checks catch what they claim to.
SABOTAGE = ("score", "drop-add", "keep-delete", "quota", "refusal", "store", "lag")
MAX_VIOLATIONS_PER_SEED = 30
# What _judge returns for an answer that no allowed version explains.
UNEXPLAINED = -1


class ViolationError(Exception):
    """Ends a seed at its first violation (unless the scenario keeps going)."""


@dataclass(frozen=True)
class ViolationRecord:
    kind: str
    seed: int
    step: int
    message: str
    log_tail: tuple[str, ...]
    subject: str = ""  # the endpoint whose answer broke the property, where one did

    def format(self, replay: str) -> str:
        return (
            f"property {self.kind} violated: {self.message}\n"
            f"seed {self.seed}, step {self.step}; replay: {replay}\n"
            "last operations:\n  " + "\n  ".join(self.log_tail)
        )


# Talking to a node ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    code: int | None  # error_code (0: success); None: no answer (connection lost, HTTP error, no JSON)
    body: dict[str, Any]
    problem: str
    started: float
    finished: float

    @property
    def text(self) -> str:
        if self.code is None:
            return self.problem
        return f"{self.code} {self.body.get('error_msg', '')}".strip()


# TCP proxy -----------------------------------------------------------------------------------------


class StallProxy:
    """A TCP proxy on 127.0.0.1 in front of PostgreSQL whose forwarding can be stopped for a while:
    a stall keeps every connection open and delivers nothing either way, as a congested or
    partitioned network does (no reset, no FIN), then resumes with every byte in order."""

    SELECT_SECONDS = 0.2

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(self.SELECT_SECONDS)
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self.resume_at = 0.0
        threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True).start()

    def stall(self, seconds: float) -> float:
        """Stop forwarding now and resume after `seconds` (a timer: the harness may be blocked in a
        request through this proxy meanwhile). Returns when it resumes (time.monotonic())."""
        self._flowing.clear()
        self.resume_at = time.monotonic() + seconds
        self._timer = threading.Timer(seconds, self._flowing.set)
        self._timer.daemon = True
        self._timer.start()
        return self.resume_at

    def resume(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._flowing.set()

    @property
    def stalled(self) -> bool:
        return not self._flowing.is_set()

    def close(self) -> None:
        self._closed.set()
        self.resume()
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()

    def _accept(self) -> None:
        # Runs for the proxy's life; each wait is bounded, so close() ends it within SELECT_SECONDS.
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:  # the database is down: refuse as it would
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                readable, _, _ = select.select([source], [], [], self.SELECT_SECONDS)
                if not readable:
                    continue
                data = source.recv(65536)
                if not data:
                    break
                # A stall holds what arrived; every wait is bounded so that close() is seen.
                while not self._flowing.wait(self.SELECT_SECONDS):
                    if self._closed.is_set():
                        return
                target.sendall(data)
        except (OSError, ValueError):
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.close()


# Nodes and deployments -----------------------------------------------------------------------------


class Node:
    """One `renlian serve` process, started again on the same data (and database) after a kill."""

    def __init__(
        self, name: str, root: Path, env: dict[str, str], bootstrap: dict[str, str], proxy: StallProxy | None
    ) -> None:
        self.name = name
        self.root = root
        self.proxy = proxy
        root.mkdir(parents=True, exist_ok=True)
        # The rows-full hook's flag file: while it exists, writes to this node's row files fail.
        self.flag = root / "rows-full.flag"
        self.env = {**env, "RENLIAN_FAULT_ROWS_FULL": str(self.flag)}
        self.bootstrap = bootstrap
        self.server: Server | None = None
        self.client = httpx.Client(timeout=REQUEST_TIMEOUT)
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.server is not None and self.server.process.poll() is None

    @property
    def base_url(self) -> str:
        assert self.server is not None
        return self.server.base_url

    @property
    def data_dir(self) -> Path:
        return self.root / "data"  # where start_server puts it

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    def start(self) -> None:
        self.server = start_server(self.root, extra_env=self.env, app=self.bootstrap)
        self.client.close()
        self.client = httpx.Client(timeout=REQUEST_TIMEOUT)  # no pooled connection to the old process
        self.starts += 1

    def kill(self) -> None:
        assert self.server is not None
        self.server.process.kill()  # SIGKILL: no shutdown, no flush, no snapshot
        self.server.process.wait(timeout=30)

    def stop(self) -> None:
        if self.server is not None and self.server.process.poll() is None:
            self.server.process.terminate()
            try:
                self.server.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.server.process.kill()
                self.server.process.wait(timeout=30)
        self.client.close()

    def post(self, path: str, token: str, fields: dict[str, Any], *, v3: bool) -> Reply:
        started = time.monotonic()
        try:
            params = {"access_token": token}
            if v3:  # v3 takes JSON bodies, v2 forms, as Baidu's SDKs send them
                response = self.client.post(self.base_url + path, params=params, json=fields)
            else:
                response = self.client.post(self.base_url + path, params=params, data=fields)
        except httpx.HTTPError as exc:
            return Reply(None, {}, f"{type(exc).__name__}: {exc}", started, time.monotonic())
        finished = time.monotonic()
        if response.status_code != 200:
            return Reply(None, {}, f"HTTP {response.status_code}: {response.text[:200]}", started, finished)
        try:
            body = response.json()
        except ValueError:
            return Reply(None, {}, f"not JSON: {response.text[:200]}", started, finished)
        if not isinstance(body, dict):
            return Reply(None, {}, f"not an object: {response.text[:200]}", started, finished)
        return Reply(int(body.get("error_code") or 0), body, "", started, finished)

    def metrics(self) -> str | None:
        try:
            return self.client.get(self.base_url + "/metrics", timeout=10).text
        except httpx.HTTPError:
            return None

    def index_faces(self, text: str, app_id: str) -> int:
        found = re.search(rf'^renlian_index_faces{{app_id="{app_id}"}} (\S+)$', text, re.M)
        return int(float(found.group(1))) if found else 0


def cli_apps(env: dict[str, str], specs: list[tuple[str, int | None]]) -> dict[str, dict[str, str]]:
    """Create apps (and set their total quota) with `renlian apps create` / `apps set`, all in one
    Python process: each separate command would pay the interpreter's start-up again."""
    script = (
        "import contextlib, io, json, sys\n"
        "from renlian.cli import main\n"
        "made = {}\n"
        "for name, total in json.loads(sys.argv[1]):\n"
        "    out = io.StringIO()\n"
        "    with contextlib.redirect_stdout(out):\n"
        "        assert main(['apps', 'create', name]) == 0\n"
        "    app = json.loads(out.getvalue())\n"
        "    if total is not None:\n"
        "        with contextlib.redirect_stdout(io.StringIO()):\n"
        "            assert main(['apps', 'set', app['app_id'], '--total', str(total)]) == 0\n"
        "    made[name] = app\n"
        "print(json.dumps(made))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(specs)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"renlian apps failed: {result.stderr[-2000:]}")
    made: dict[str, dict[str, str]] = json.loads(result.stdout.strip().splitlines()[-1])
    return made


# One worker thread of one single-threaded inference worker per node: the servers share two cores
# with the test, and the embeddings are then computed as this process computes them.
NODE_ENV = {
    "RENLIAN_INFERENCE_WORKERS": "1",
    "RENLIAN_THREADS_PER_WORKER": "1",
}


@dataclass
class Deployment:
    name: str
    root: Path
    nodes: list[Node]
    cli_env: dict[str, str]  # for `renlian apps` and `renlian import`, as the servers see the store
    fault_kinds: tuple[str, ...]
    cluster: Cluster | None = None
    database_stopped: bool = False

    def close(self) -> None:
        if self.cluster is not None and self.database_stopped:
            self.cluster.start_server()
            self.database_stopped = False
        for node in self.nodes:
            node.stop()
            if node.proxy is not None:
                node.proxy.close()
            node.flag.unlink(missing_ok=True)


def _start_all(nodes: list[Node]) -> None:
    """Start the nodes side by side: most of a start is loading models, which overlaps."""
    errors: list[BaseException] = []

    def start(node: Node) -> None:
        try:
            node.start()
        except BaseException as exc:  # reported below, in this thread
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    if errors:
        raise errors[0]


def start_fleet(cluster: Cluster, root: Path, size: int = 2) -> Deployment:
    """Nodes a, b, ... on one new database of `cluster`, each through a StallProxy of its own."""
    url = cluster.new_database()
    cli_env = {**NODE_ENV, "RENLIAN_DATABASE_URL": url, "RENLIAN_DATA_DIR": str(root / "cli")}
    bootstrap = cli_apps(cli_env, [("bootstrap", None)])["bootstrap"]
    nodes = []
    for name in "abcdefgh"[:size]:
        proxy = StallProxy(cluster.port)
        env = {
            **NODE_ENV,
            "RENLIAN_DATABASE_URL": url.replace(f":{cluster.port}/", f":{proxy.port}/"),
            # A request waits at most this long for a database connection: an outage answers
            # 216300 within a second instead of waiting it out.
            "RENLIAN_DB_BUSY_TIMEOUT_SECONDS": "1",
        }
        nodes.append(Node(name, root / name, env, bootstrap, proxy))
    deployment = Deployment("fleet", root, nodes, cli_env, FLEET_FAULTS, cluster)
    try:
        _start_all(nodes)
    except BaseException:
        deployment.close()
        raise
    return deployment


def start_sqlite(root: Path) -> Deployment:
    """One node on SQLite; `renlian import` writes into the same data directory while it runs."""
    node_root = root / "a"
    cli_env = {**NODE_ENV, "RENLIAN_DATA_DIR": str(node_root / "data")}
    bootstrap = cli_apps(cli_env, [("bootstrap", None)])["bootstrap"]
    node = Node("a", node_root, dict(NODE_ENV), bootstrap, None)
    deployment = Deployment("sqlite", root, [node], cli_env, SQLITE_FAULTS)
    try:
        node.start()
    except BaseException:
        deployment.close()
        raise
    return deployment


# `renlian import` beside the servers ---------------------------------------------------------------


class ImportRun:
    """One `renlian import DIR --group G --app APP_ID` process, started and left running."""

    def __init__(self, deployment: Deployment, app_id: str, write: Write, folder: Path) -> None:
        self.write = write
        self.app_id = app_id
        self.folder = folder
        for uid, photos in write.imported:
            (folder / uid).mkdir(parents=True)
            for photo in photos:
                (folder / uid / f"{photo.name}.jpg").write_bytes(photo.data)
        self.output = folder.with_suffix(".log")
        with self.output.open("wb") as sink:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "renlian.cli",
                    "import",
                    str(folder),
                    "--group",
                    write.group,
                    "--app",
                    app_id,
                ],
                env={**os.environ, **deployment.cli_env},
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()
        self.exited_at: float | None = None
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        # The import's acknowledgement is its exit: record when, to the resolution of this thread.
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=IMPORT_TIMEOUT)
            self.exited_at = time.monotonic()

    def finish(self) -> tuple[int | None, set[str], str]:
        """(exit code or None if it hung and was killed, names of the photos it reports as failed,
        its output)."""
        self._watcher.join(timeout=max(0.0, self.started + IMPORT_TIMEOUT - time.monotonic()) + 1)
        if self.exited_at is None:
            self.kill()
            return None, set(), self.output.read_text(errors="replace")[-2000:]
        text = self.output.read_text(errors="replace")
        failed = {
            Path(line.split(": ", 2)[1]).stem for line in text.splitlines() if line.startswith("failed: ")
        }
        return self.process.returncode, failed, text[-2000:]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


# The scenario --------------------------------------------------------------------------------------


@dataclass
class Options:
    steps: int = 40
    faults: int = 2
    fault_kinds: tuple[str, ...] | None = None  # None: every kind the deployment supports
    imports: int = 1
    quota: bool = True
    quota_total: int = 10
    apps: int = 2
    pool_size: int = 32
    composites: int = 4
    keep_going: bool = False
    sabotage: str = ""
    sweep_limit: int = 12  # probes per node and app in a sweep


@dataclass
class Report:
    seed: int
    deployment: str
    steps: int
    operations: int = 0
    faults: list[str] = field(default_factory=list)
    violations: list[ViolationRecord] = field(default_factory=list)
    seconds: float = 0.0
    reloads: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # every operation, fault and check, in order

    replay: str = ""  # the bench command that runs this seed again with the same options
    broken: bool = False  # the deployment could not be restored for the next seed

    def failure(self) -> str:
        return "\n\n".join(v.format(self.replay) for v in self.violations[:3])


@dataclass
class Fault:
    kind: str
    start: int
    end: int
    node: Node | None = None
    started: bool = False
    ended: bool = False
    began_at: float = 0.0
    resume_at: float = 0.0  # stall: when the proxy forwards again


@dataclass
class Pending:
    """A write whose outcome is unknown (its answer was lost or refused), until the store is read."""

    app: str
    write: Write
    before: State
    after: State
    groups: set[str]
    node: Node | None  # None: an import
    reply: Reply
    excuse: str
    # An import's photos it reported enrolled (they must be in the store); the others may or may not.
    required: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Deferred:
    """An acknowledged write whose check on the nodes waits for its concurrent writes."""

    app: str
    write: Write
    before: State
    version: int
    node: Node | None


@dataclass
class PlannedImport:
    start: int
    end: int
    run: ImportRun | None = None
    app: str = ""


def rows_full_hook_present() -> bool:
    """Whether the server's code knows RENLIAN_FAULT_ROWS_FULL (the hook is being added; without it
    the rows-full fault is injected but changes nothing, and the report says so)."""
    root = Path(__file__).resolve().parents[1] / "renlian"
    return any("RENLIAN_FAULT_ROWS_FULL" in path.read_text(errors="replace") for path in root.rglob("*.py"))


class Scenario:
    def __init__(
        self,
        seed: int,
        deployment: Deployment,
        pool: FacePool,
        recognizer: str,
        options: Options,
        scratch: Path,
    ) -> None:
        self.seed = seed
        self.deployment = deployment
        self.pool = pool
        self.options = options
        self.scratch = scratch
        self.rng = random.Random(seed)
        self.score = scorer(recognizer, bias=0.2 if options.sabotage == "score" else 0.0)
        self.report = Report(
            seed, deployment.name, options.steps, replay=replay_command(seed, deployment, options)
        )
        self.log: list[str] = []
        self.step = 0
        self.apps: list[str] = []
        self.app_records: dict[str, dict[str, str]] = {}
        self.quota_app: dict[str, str] | None = None
        self.tokens: dict[str, str] = {}
        self.histories: dict[str, History] = {}
        self.floors: dict[tuple[str, str], int] = {}
        self.node_excuse: dict[str, tuple[float, str]] = {}
        self.app_excuse: dict[tuple[str, str], float] = {}
        self.rows_full: Node | None = None
        self.rows_full_tainted: set[str] = set()
        self.pending: Pending | None = None
        self.imports: list[PlannedImport] = []
        self.importing: PlannedImport | None = None
        self.faults: list[Fault] = []
        self.fault_times: list[tuple[float, float]] = []
        self.quota_step = -1
        self.sweeps: list[tuple[float, Node, str]] = []
        self.unused: list[Photo] = []
        self.count_check = True
        self.sabotaged = False
        self.imports_made = 0
        # node -> (its start number, renlian_index_sync_reloads, when read)
        self.reloads_seen: dict[str, tuple[int, float, float]] = {}
        self.began = time.monotonic()
        # How stale an answer may be: the promise plus slack (none at all in the "lag" sabotage, so
        # that the other node's first answer after a write is caught as stale).
        self.window = 0.0 if options.sabotage == "lag" else LAG + STALE_SLACK

    # Running ---------------------------------------------------------------------------------------

    def run(self) -> Report:
        started = time.monotonic()
        try:
            self._setup()
            for step in range(1, self.options.steps + 1):
                self.step = step
                self._transitions()
                self._operation()
                self._after_step()
            self.step = self.options.steps + 1
            self._finish()
        except ViolationError:
            pass  # recorded in the report
        finally:
            try:
                self._restore()
            except (RuntimeError, subprocess.SubprocessError) as exc:
                # A node that cannot be started again (or a database that will not start) leaves
                # the deployment unusable: the report says so and the caller stops.
                self.report.broken = True
                self.report.violations.append(
                    ViolationRecord(
                        "recovery",
                        self.seed,
                        self.step,
                        f"the deployment could not be restored: {str(exc)[-1500:]}",
                        tuple(self.log[-25:]),
                    )
                )
            self.report.seconds = round(time.monotonic() - started, 1)
            self.report.log = self.log
            self.report.reloads = self._reloads()
        return self.report

    def violate(self, kind: str, message: str, subject: str = "") -> None:
        record = ViolationRecord(kind, self.seed, self.step, message, tuple(self.log[-25:]), subject)
        self.report.violations.append(record)
        self.log.append(f"    !! {kind}: {message[:300]}")
        if not self.options.keep_going or len(self.report.violations) >= MAX_VIOLATIONS_PER_SEED:
            raise ViolationError(kind)

    def note(self, text: str) -> None:
        self.log.append(f"{self.step:>3} {time.monotonic() - self.began:7.2f} {text}")

    def _setup(self) -> None:
        names = [f"s{self.seed}_app{n}" for n in range(self.options.apps)]
        specs: list[tuple[str, int | None]] = [(name, None) for name in names]
        if self.options.quota:
            specs.append((f"s{self.seed}_quota", self.options.quota_total))
        made = cli_apps(self.deployment.cli_env, specs)
        node = self._alive()[0]
        for name in names:
            app_id = made[name]["app_id"]
            self.apps.append(app_id)
            self.app_records[app_id] = made[name]
            self.tokens[app_id] = token_for(node.base_url, made[name])
            self.histories[app_id] = History()
        if self.options.quota:
            self.quota_app = made[f"s{self.seed}_quota"]
        self.unused = list(self.pool.photos)
        self.rng.shuffle(self.unused)
        text = node.metrics() or ""
        if "renlian_index_faces" not in text:
            self.count_check = False
            self.report.notes.append("index-count check off: /metrics has no renlian_index_faces")
        self._plan()

    def _plan(self) -> None:
        steps, options = self.options.steps, self.options
        kinds = options.fault_kinds or self.deployment.fault_kinds
        count = options.faults if kinds else 0
        offset = self.rng.randrange(len(kinds)) if kinds else 0
        slot = steps // max(1, count)
        for number in range(count):
            kind = kinds[(offset + number) % len(kinds)]
            start = number * slot + self.rng.randint(2, max(2, slot // 3))
            single = len(self.deployment.nodes) == 1
            length = {
                "kill9": 0 if single else self.rng.randint(0, 2),
                "restart": 0 if single else self.rng.randint(0, 2),
                "pg-stop": self.rng.randint(1, 3),
                "stall": self.rng.randint(2, 4),
                "rows-full": self.rng.randint(3, 6),
            }[kind]
            end = min(start + length, (number + 1) * slot - 1, steps)
            if start <= steps:
                self.faults.append(Fault(kind, start, max(start, end)))
        position = 2
        for _ in range(options.imports):
            if steps - position < 6:
                break
            start = self.rng.randint(position, max(position, min(steps - 6, position + steps // 2)))
            end = min(steps, start + self.rng.randint(3, 8))
            self.imports.append(PlannedImport(start, end))
            position = end + 1
        if options.quota:
            self.quota_step = self.rng.randint(2, max(2, steps - 2))

    def _alive(self) -> list[Node]:
        return [node for node in self.deployment.nodes if node.alive]

    # Faults ----------------------------------------------------------------------------------------

    def _excused(self, node: Node, app: str, moment: float) -> str:
        """Why a refusal by `node` of a request sent at `moment` is excused ('' when it is not)."""
        if self.options.sabotage == "refusal":
            return ""
        until, why = self.node_excuse.get(node.name, (float("-inf"), ""))
        if moment <= until:
            return why
        if moment <= self.app_excuse.get((node.name, app), float("-inf")):
            return "rows-full"
        return ""

    def _taint(self, app: str) -> None:
        """A write to `app` during a rows-full fault: the faulty node may refuse the app's searches
        until it has rebuilt the groups it could not write (the rows-full fault's promise)."""
        if self.rows_full is not None:
            self.rows_full_tainted.add(app)
            self.app_excuse[self.rows_full.name, app] = float("inf")

    def _excuse(self, node: Node, until: float, why: str) -> None:
        self.node_excuse[node.name] = (until, why)

    def _transitions(self) -> None:
        now = time.monotonic()
        for fault in self.faults:
            if (
                fault.started
                and not fault.ended
                and (self.step >= fault.end or (fault.kind == "stall" and now >= fault.resume_at))
            ):
                self._end_fault(fault)
        for fault in self.faults:
            if (
                fault.start == self.step
                and not fault.started
                and not any(f.started and not f.ended for f in self.faults)
            ):
                self._start_fault(fault)
        for planned in self.imports:
            if planned.start == self.step and self.importing is None:
                self._start_import(planned)
            if planned.end == self.step and planned is self.importing:
                self._finish_import(planned)
        quiet = not any(f.started and not f.ended for f in self.faults) and self.pending is None
        if self.step >= self.quota_step >= 0 and quiet:
            self.quota_step = -1
            self._quota_burst()
        self._due_sweeps()

    def _start_fault(self, fault: Fault) -> None:
        fault.started = True
        fault.began_at = time.monotonic()
        alive = self._alive()
        self.report.faults.append(fault.kind)
        if fault.kind == "kill9":
            victim = self.rng.choice(alive)
            fault.node = victim
            self._excuse(victim, float("inf"), "kill9")
            if self.rng.random() < 0.5 and self.pending is None:
                self._kill_during_write(victim)
            else:
                victim.kill()
                self.note(f"{victim.name} killed (SIGKILL)")
            if len(self.deployment.nodes) == 1:
                self._end_fault(fault)
        elif fault.kind == "restart":
            victim = self.rng.choice(alive)
            fault.node = victim
            self._excuse(victim, float("inf"), "restart")
            victim.stop()
            self.note(f"{victim.name} stopped (SIGTERM)")
            if len(self.deployment.nodes) == 1:
                self._end_fault(fault)
        elif fault.kind == "pg-stop":
            assert self.deployment.cluster is not None
            for node in self.deployment.nodes:
                self._excuse(node, float("inf"), "pg-stop")
            self.deployment.cluster.stop_server()
            self.deployment.database_stopped = True
            self.note("PostgreSQL stopped")
        elif fault.kind == "stall":
            victim = self.rng.choice([n for n in alive if n.proxy is not None])
            fault.node = victim
            assert victim.proxy is not None
            self._excuse(victim, float("inf"), "stall")
            seconds = self.rng.uniform(1.0, 2.0)
            fault.resume_at = victim.proxy.stall(seconds)
            self.note(f"{victim.name}'s database connections stalled for {seconds:.1f} s")
        elif fault.kind == "rows-full":
            victim = self.rng.choice(alive)
            fault.node = victim
            self.rows_full = victim
            self.rows_full_tainted = set()
            if self.importing is not None:  # its writes land in the rows files from now on too
                self._taint(self.importing.app)
            victim.flag.touch()
            self.note(f"{victim.name}'s index rows files full (ENOSPC) from now")

    def _end_fault(self, fault: Fault) -> None:
        fault.ended = True
        now = time.monotonic()
        if fault.kind in ("kill9", "restart"):
            victim = fault.node
            assert victim is not None
            self._start_node(victim)
            self._recovered([victim])
        elif fault.kind == "pg-stop":
            assert self.deployment.cluster is not None
            self.deployment.cluster.start_server()
            self.deployment.database_stopped = False
            self.note("PostgreSQL started")
            self._recovered(self._alive())
        elif fault.kind == "stall":
            victim = fault.node
            assert victim is not None and victim.proxy is not None
            # Bounded by the stall's own length (at most 2 s).
            while victim.proxy.stalled and time.monotonic() < fault.resume_at + 5:
                time.sleep(0.05)
            victim.proxy.resume()
            self.note(f"{victim.name}'s database connections flow again")
            self._recovered([victim])
        elif fault.kind == "rows-full":
            victim = fault.node
            assert victim is not None
            victim.flag.unlink(missing_ok=True)
            self.rows_full = None
            until = time.monotonic() + ROWS_SETTLE
            for app in self.rows_full_tainted:
                self.app_excuse[victim.name, app] = until
            for app in self.apps:
                self.sweeps.append((until, victim, app))
            self.note(
                f"{victim.name}'s index rows files writable again "
                f"({len(self.rows_full_tainted)} app(s) to rebuild)"
            )
        self.fault_times.append((fault.began_at, now))
        self._settle()

    def _start_node(self, node: Node) -> None:
        started = time.monotonic()
        try:
            node.start()
        except RuntimeError as exc:
            self.options.keep_going = False  # nothing sensible follows a node that cannot start
            self.violate("recovery", f"{node.name} did not start again: {str(exc)[-1500:]}")
        self.note(f"{node.name} started again in {time.monotonic() - started:.1f} s")
        # Healthy means its index holds everything committed before (it catches up before serving).
        for app in self.apps:
            self.floors[node.name, app] = self.histories[app].last

    def _recovered(self, nodes: list[Node]) -> None:
        """Wait for each node to answer a read again (bounded), then excuse refusals for SETTLE."""
        for node in nodes:
            deadline = time.monotonic() + RECOVERY_LIMIT
            app = self.apps[0]
            while True:
                reply = node.post(
                    f"{V3}/faceset/group/getlist", self.tokens[app], {"start": 0, "length": 1}, v3=True
                )
                if reply.code == OK:
                    break
                if time.monotonic() > deadline:
                    self.violate(
                        "recovery",
                        f"{node.name} still answers {reply.text} "
                        f"{RECOVERY_LIMIT:.0f} s after the fault ended",
                    )
                    break
                time.sleep(0.1)
            until = time.monotonic() + SETTLE
            self._excuse(node, until, "settling")
            for app in self.apps:
                self.sweeps.append((until, node, app))

    def _kill_during_write(self, victim: Node) -> None:
        """SIGKILL while a write is in flight on `victim`: its outcome is whatever the store says."""
        chosen = self._choose_write()
        if chosen is None:
            victim.kill()
            self.note(f"{victim.name} killed (SIGKILL)")
            return
        app, write = chosen
        replies: list[Reply] = []
        thread = threading.Thread(target=lambda: replies.append(self._send_write(victim, app, write)))
        thread.start()
        time.sleep(self.rng.uniform(0.0, 0.15))
        victim.kill()
        thread.join(timeout=REQUEST_TIMEOUT + 5)
        self.note(f"{victim.name} killed (SIGKILL) during {write.describe()}")
        self._handle_write(victim, app, write, replies[0] if replies else None)

    # Operations ------------------------------------------------------------------------------------

    def _operation(self) -> None:
        total = sum(WRITE_WEIGHTS.values()) + SEARCH_WEIGHT + BURST_WEIGHT
        draw = self.rng.random() * total
        quiet = not any(f.started and not f.ended for f in self.faults)
        if draw < BURST_WEIGHT and quiet and self.pending is None and len(self.unused) >= 2 * BURST_WRITES:
            self._burst()
            return
        if draw >= SEARCH_WEIGHT + BURST_WEIGHT:
            chosen = self._choose_write()
            if chosen is not None:
                app, write = chosen
                node = self.rng.choice(self._alive())
                self._handle_write(node, app, write, self._send_write(node, app, write))
                return
        self._search_operation()

    def _blocked(self, app: str) -> set[str]:
        """Groups of `app` whose state is not known right now: an import writing into one, or the
        groups of a write waiting to be settled."""
        blocked = set()
        if self.importing is not None and self.importing.app == app and self.importing.run is not None:
            blocked.add(self.importing.run.write.group)
        if self.pending is not None and self.pending.app == app:
            blocked |= self.pending.groups
        return blocked

    def _fresh_photo(self) -> Photo:
        return self.unused.pop() if self.unused else self.rng.choice(self.pool.photos)

    def _photo_for(self, state: State, group: str) -> Photo:
        draw = self.rng.random()
        held = [p for user in state.groups.get(group, {}).values() for p in user.faces]
        if draw < 0.12 and held:
            return self.rng.choice(held)  # the group has it: v3 answers 223105, v2 216616 for its uid
        if draw < 0.25:
            return self.rng.choice(self.pool.photos)
        return self._fresh_photo()

    def _choose_write(self) -> tuple[str, Write] | None:
        """A random write that the model can predict now, or None when writes must wait (a write
        waiting to be settled)."""
        if self.pending is not None:
            return None
        kinds = list(WRITE_WEIGHTS)
        for _ in range(20):  # redraw a write that would touch a group an import is writing
            app = self.rng.choice(self.apps) if self.rng.random() < 0.3 else self.apps[0]
            state = self.histories[app].latest
            # A nearly empty library makes most writes answer "no such group": enrol first.
            growing = 4 if state.face_count() < 6 else 1
            weights = [WRITE_WEIGHTS[k] * (growing if k in ("v3-add", "v2-add") else 1) for k in kinds]
            write = self._make_write(self.rng.choices(kinds, weights)[0], state)
            if not write.footprint(state) & self._blocked(app):
                return app, write
        return None

    def _make_write(self, kind: str, state: State) -> Write:
        rng = self.rng
        registered = list(state.groups)

        def group(existing: float = 0.8) -> str:
            return rng.choice(registered) if registered and rng.random() < existing else rng.choice(GROUPS)

        def uid(in_group: str, existing: float = 0.75) -> str:
            users = list(state.groups.get(in_group, {}))
            return rng.choice(users) if users and rng.random() < existing else rng.choice(UIDS)

        def info() -> str | None:
            return None if rng.random() < 0.6 else f"info{rng.randint(0, 99)}"

        if kind == "v3-add":
            g = group(0.7)
            return Write(
                kind,
                group=g,
                uid=uid(g, 0.4),
                photo=self._photo_for(state, g),
                info=info(),
                action="REPLACE" if rng.random() < 0.15 else "APPEND",
            )
        if kind == "v3-update":
            g = group(0.9)
            return Write(
                kind,
                group=g,
                uid=uid(g, 0.85),
                photo=self._photo_for(state, g),
                info=info(),
                action="REPLACE" if rng.random() < 0.15 else "UPDATE",
            )
        if kind == "v3-delete":
            g = group(0.9)
            return Write(kind, group="" if rng.random() < 0.2 else g, uid=uid(g, 0.85))
        if kind == "v3-copy":
            g = group(0.9)
            return Write(kind, group=g, uid=uid(g, 0.85), dst=group(0.8))
        if kind == "v3-group-add":
            return Write(kind, group=group(0.3))
        if kind == "v3-group-delete":
            return Write(kind, group=group(0.85))
        if kind == "v3-face-delete":
            g = group(0.9)
            u = uid(g, 0.85)
            held = state.user(g, u)
            faces = list(held.faces) if held is not None else []
            photo = rng.choice(faces) if faces and rng.random() < 0.85 else rng.choice(self.pool.photos)
            return Write(kind, group=g, uid=u, token=photo.token)
        if kind == "v2-add":
            g = group(0.7)
            into = (g,) if rng.random() < 0.75 else (g, group(0.6))
            return Write(
                kind,
                groups=into,
                uid=uid(g, 0.4),
                photo=self._photo_for(state, g),
                info=f"v2info{rng.randint(0, 99)}",
                action="replace" if rng.random() < 0.15 else "append",
            )
        if kind == "v2-delete":
            g = group(0.9)
            u = uid(g, 0.85)
            named = () if rng.random() < 0.4 else tuple(dict.fromkeys((g, group(0.5))))[: rng.randint(1, 2)]
            return Write(kind, groups=named, uid=u)
        raise ValueError(kind)

    def _send_write(self, node: Node, app: str, write: Write) -> Reply:
        token = self.tokens[app]
        kind = write.kind
        if kind in ("v3-add", "v3-update"):
            assert write.photo is not None
            body: dict[str, Any] = {
                "image": write.photo.b64,
                "image_type": "BASE64",
                "group_id": write.group,
                "user_id": write.uid,
                "action_type": write.action,
            }
            if write.info is not None:
                body["user_info"] = write.info
            path = "user/add" if kind == "v3-add" else "user/update"
            return node.post(f"{V3}/faceset/{path}", token, body, v3=True)
        if kind == "v3-delete":
            body = {"group_id": write.group or "@ALL", "user_id": write.uid}
            return node.post(f"{V3}/faceset/user/delete", token, body, v3=True)
        if kind == "v3-copy":
            body = {"user_id": write.uid, "src_group_id": write.group, "dst_group_id": write.dst}
            return node.post(f"{V3}/faceset/user/copy", token, body, v3=True)
        if kind == "v3-group-add":
            return node.post(f"{V3}/faceset/group/add", token, {"group_id": write.group}, v3=True)
        if kind == "v3-group-delete":
            return node.post(f"{V3}/faceset/group/delete", token, {"group_id": write.group}, v3=True)
        if kind == "v3-face-delete":
            body = {"group_id": write.group, "user_id": write.uid, "face_token": write.token}
            return node.post(f"{V3}/faceset/face/delete", token, body, v3=True)
        if kind == "v2-add":
            assert write.photo is not None and write.info is not None
            form = {
                "uid": write.uid,
                "user_info": write.info,
                "group_id": ",".join(write.groups),
                "image": write.photo.b64,
                "action_type": write.action,
            }
            return node.post(f"{V2}/faceset/user/add", token, form, v3=False)
        if kind == "v2-delete":
            form = {"uid": write.uid}
            if write.groups:
                form["group_id"] = ",".join(write.groups)
            return node.post(f"{V2}/faceset/user/delete", token, form, v3=False)
        raise ValueError(kind)

    def _handle_write(
        self, node: Node, app: str, write: Write, reply: Reply | None, deferred: list[Deferred] | None = None
    ) -> None:
        """Judge a write's answer and record it. With `deferred`, an acknowledged write is checked on
        the nodes later (by the caller, once concurrent writes are in the model too)."""
        history = self.histories[app]
        before = history.latest
        code, after = apply(before, write)
        self._taint(app)
        if reply is None:
            reply = Reply(
                None, {}, "no answer (the request thread did not return)", time.monotonic(), time.monotonic()
            )
        self.report.operations += 1
        self.note(
            f"{node.name} {write.describe()} -> {reply.text} "
            f"({(reply.finished - reply.started) * 1000:.0f} ms)"
        )
        if reply.code == code:
            if code == OK:
                self._acknowledged(node, app, write, before, after, reply.finished, deferred)
            return
        if reply.code is None or reply.code in DB_ERRORS:
            excuse = self._excused(node, app, reply.started)
            if not excuse:
                self.violate(
                    "write-refused",
                    f"{node.name} answered {write.describe()} with {reply.text} outside any fault",
                )
            if code != OK:
                return  # the model says it fails whatever happened: nothing can have changed
            self.pending = Pending(
                app,
                write,
                before,
                after,
                write.footprint(before) | write.footprint(after),
                node,
                reply,
                excuse,
            )
            self._settle()
            return
        self.violate(
            "answer", f"{node.name} answered {write.describe()} with {reply.text}; the model predicts {code}"
        )
        # Kept going: learn what the store did, so that the model follows the server from here.
        self.pending = Pending(
            app, write, before, after, write.footprint(before) | write.footprint(after), node, reply, "answer"
        )
        self._settle()

    def _acknowledged(
        self,
        node: Node | None,
        app: str,
        write: Write,
        before: State,
        after: State,
        at: float,
        deferred: list[Deferred] | None = None,
    ) -> None:
        history = self.histories[app]
        sabotage = self.options.sabotage
        if not self.sabotaged and (
            (sabotage == "drop-add" and write.kind in ("v3-add", "v2-add"))
            or (sabotage == "keep-delete" and write.kind in ("v3-delete", "v2-delete"))
        ):
            self.sabotaged = True  # the model "forgets" this acknowledged write
            self.note(f"sabotage: the model ignores {write.describe()}")
            return
        version = history.commit(
            after, at, f"step {self.step} {node.name if node else 'store'} {write.describe()}"
        )
        if node is not None and deferred is None:
            # Read-your-writes on the acknowledging node (not for concurrent writes: their versions
            # are in answer order, which need not be their commit order).
            self.floors[node.name, app] = version
        if deferred is not None:
            deferred.append(Deferred(app, write, before, version, node))
        else:
            self._verify(app, write, before, version, first=node)

    # Settling unknown writes -----------------------------------------------------------------------

    def _reader(self) -> Node | None:
        """A node that can read the store now: alive, and not cut off by a fault (a rows-full node
        reads its store as usual, and so does one that is only settling)."""
        now = time.monotonic()
        for node in self._alive():
            until, why = self.node_excuse.get(node.name, (float("-inf"), ""))
            if now > until or why not in ("kill9", "restart", "pg-stop", "stall"):
                return node
        return None

    def _settle(self) -> None:
        pending = self.pending
        if pending is None:
            return
        reader = self._reader()
        if reader is None:
            return  # after the fault
        shown = self._read_store(reader, pending.app, pending.groups)
        if shown is None:
            return
        history = self.histories[pending.app]
        self.pending = None
        write, after = pending.write, pending.after
        if write.kind == "import":
            # Each photo of an import is its own transaction: keep those the store holds.
            users = shown.get(write.group) or {}
            held = {uid: tokens for uid, (_, tokens) in users.items()}
            kept = tuple(
                (uid, tuple(p for p in photos if p.token in held.get(uid, frozenset())))
                for uid, photos in write.imported
            )
            lost = pending.required - {p.name for _, photos in kept for p in photos}
            if lost:
                self.violate(
                    "store", f"{write.describe()} reported {sorted(lost)} enrolled, the store lacks them"
                )
            write = Write("import", group=write.group, imported=kept)
            after = apply(pending.before, write)[1]
        source = pending.node.name if pending.node is not None else "renlian import"
        unchanged = after.projection(pending.groups) == pending.before.projection(pending.groups)
        if shown == after.projection(pending.groups) and not unchanged:
            self.note(f"settled on {reader.name}: {write.describe()} committed")
            if pending.reply.code in DB_ERRORS and pending.excuse in ("", "rows-full"):
                self.violate(
                    "write-answer",
                    f"{source} answered {write.describe()} with {pending.reply.text} but it committed",
                )
            version = history.commit(after, time.monotonic(), f"step {self.step} settled {write.describe()}")
            self._verify(pending.app, write, pending.before, version, first=None)
        elif shown == pending.before.projection(pending.groups):
            self.note(f"settled on {reader.name}: {write.describe()} not committed")
        else:
            self.violate(
                "store",
                f"after {write.describe()} answered {pending.reply.text}, the store shows "
                f"{_describe_projection(shown)}; before it "
                f"{_describe_projection(pending.before.projection(pending.groups))}, after it "
                f"{_describe_projection(after.projection(pending.groups))}",
            )
            history.commit(
                self._adopt(history.latest, shown), time.monotonic(), f"step {self.step} adopted the store"
            )

    def _adopt(self, state: State, shown: dict[str, dict[str, tuple[str, frozenset[str]]] | None]) -> State:
        """The model with `shown` groups as the store has them (after a violation, to keep going)."""
        by_token = {photo.token: photo for photo in self.pool.photos}
        for group, users in shown.items():
            if users is None:
                state = state.with_group(group, None)
                continue
            state = state.with_group(
                group,
                {
                    uid: User(info, tuple(by_token[t] for t in sorted(tokens) if t in by_token))
                    for uid, (info, tokens) in users.items()
                },
            )
        return state

    def _read_store(
        self, node: Node, app: str, groups: set[str] | None
    ) -> dict[str, dict[str, tuple[str, frozenset[str]]] | None] | None:
        """What the store holds of `groups` (all registered and modelled ones if None), read through
        the API's store reads, or None if a read failed."""
        token = self.tokens[app]
        listed = node.post(f"{V3}/faceset/group/getlist", token, {"start": 0, "length": 1000}, v3=True)
        if listed.code != OK:
            return None
        registered = set(listed.body["result"]["group_id_list"])
        names = (registered | set(self.histories[app].latest.groups)) if groups is None else groups
        shown: dict[str, dict[str, tuple[str, frozenset[str]]] | None] = {}
        for group in sorted(names):
            if group not in registered:
                shown[group] = None
                continue
            # v2's getusers answers user_info too; a registered group without users is 216618 there.
            users = node.post(
                f"{V2}/faceset/group/getusers",
                token,
                {"group_id": group, "start": "0", "end": "1000"},
                v3=False,
            )
            if users.code not in (OK, 216618):
                return None
            members: dict[str, tuple[str, frozenset[str]]] = {}
            for record in users.body.get("result", []) if users.code == OK else []:
                faces = node.post(
                    f"{V3}/faceset/face/getlist",
                    token,
                    {"user_id": record["uid"], "group_id": group},
                    v3=True,
                )
                if faces.code == OK:
                    tokens = frozenset(face["face_token"] for face in faces.body["result"]["face_list"])
                elif faces.code == 223103:
                    tokens = frozenset()
                else:
                    return None
                members[record["uid"]] = (record["user_info"], tokens)
            shown[group] = members
        return shown

    # Searches --------------------------------------------------------------------------------------

    def _search_operation(self) -> None:
        rng = self.rng
        node = rng.choice(self._alive())
        app = rng.choice(self.apps) if rng.random() < 0.3 else self.apps[0]
        state = self.histories[app].latest
        blocked = self._blocked(app)
        registered = [g for g in state.groups if g not in blocked]
        spare = [g for g in GROUPS if g not in blocked and g not in state.groups]
        pool = registered if registered and rng.random() < 0.9 else registered + spare
        if not pool:
            pool = [g for g in GROUPS if g not in blocked]
        groups = tuple(rng.sample(pool, min(len(pool), rng.choice((1, 1, 2, 3)))))
        kind = rng.choices(("v3-search", "v2-identify", "v3-multi"), (40, 40, 20))[0]
        held = [p for g in groups for user in state.groups.get(g, {}).values() for p in user.faces]
        probe = rng.choice(held) if held and rng.random() < 0.6 else rng.choice(self.pool.photos)
        if kind == "v3-search":
            users = [u for g in groups for u in state.groups.get(g, {})]
            only = rng.choice(users or list(UIDS)) if rng.random() < 0.15 else ""
            threshold = None if rng.random() < 0.8 else float(rng.choice((60, 80, 90)))
            query = Query(kind, groups, probe, rng.randint(1, 6), threshold, only)
        elif kind == "v2-identify":
            query = Query(kind, groups, probe, rng.randint(1, 5))
        else:
            threshold = None if rng.random() < 0.7 else float(rng.choice((70, 90)))
            query = Query(
                kind,
                groups,
                rng.choice(self.pool.composites),
                rng.randint(1, 4),
                threshold,
                max_faces=rng.randint(1, 3),
            )
        self._check(node, app, query)

    def _send_query(self, node: Node, app: str, query: Query) -> Reply:
        token = self.tokens[app]
        if query.kind == "v2-identify":
            form = {
                "group_id": ",".join(query.groups),
                "image": query.probe.b64,
                "user_top_num": str(query.limit),
            }
            return node.post(f"{V2}/identify", token, form, v3=False)
        body: dict[str, Any] = {
            "image": query.probe.b64,
            "image_type": "BASE64",
            "group_id_list": ",".join(query.groups),
            "max_user_num": query.limit,
        }
        if query.threshold is not None:
            body["match_threshold"] = int(query.threshold)
        if query.kind == "v3-search":
            if query.only_uid:
                body["user_id"] = query.only_uid
            return node.post(f"{V3}/search", token, body, v3=True)
        body["max_face_num"] = query.max_faces
        return node.post(f"{V3}/multi-search", token, body, v3=True)

    def _check(
        self,
        node: Node,
        app: str,
        query: Query,
        target: int | None = None,
        deadline: float = 0.0,
        lenient_until: float = 0.0,
    ) -> None:
        """Send `query` to `node` and judge the answer against the states the promise allows. With
        `target`, poll until the node shows that version (a write just acknowledged); before
        `lenient_until` an answer no version explains is asked again rather than reported."""
        for attempt in range(200):  # also bounded in time by the window rule and `deadline`
            reply = self._send_query(node, app, query)
            lenient = time.monotonic() < lenient_until
            matched = self._judge(node, app, query, reply, quiet=target is not None, lenient=lenient)
            if matched == UNEXPLAINED and lenient:
                time.sleep(0.05)
                continue
            if matched is None or matched == UNEXPLAINED or target is None:
                return
            if matched >= target:
                if attempt:
                    waited = reply.finished - self.histories[app].versions[target].acked_at
                    self.note(f"{node.name} shows it {waited * 1000:.0f} ms after the acknowledgement")
                return
            if time.monotonic() > deadline:  # the window rule should have decided before this
                self._explain(node, app, query, parse_answer(query, reply.body), target, reply)
                return
            time.sleep(0.05)

    def _judge(
        self, node: Node, app: str, query: Query, reply: Reply, *, quiet: bool = False, lenient: bool = False
    ) -> int | None:
        """The newest allowed version the answer shows; None for a refusal; UNEXPLAINED for an answer
        no allowed version explains (a violation, unless `lenient`)."""
        history = self.histories[app]
        self.report.operations += 1
        if reply.code is None or reply.code in DB_ERRORS:
            why = self._excused(node, app, reply.started)
            self.note(
                f"{node.name} {query.describe()} -> {reply.text}" + (f" (excused: {why})" if why else "")
            )
            if not why:
                self.violate(
                    "refused",
                    f"{node.name} refused {query.describe()} with {reply.text}, "
                    "outside any fault and its settle time",
                )
            return None
        answer = parse_answer(query, reply.body)
        low = max(self.floors.get((node.name, app), 0), history.current_at(reply.started - self.window))
        matched = self._match(answer, query, app, range(history.last, low - 1, -1), low)
        if matched is None:
            self.note(f"{node.name} {query.describe()} -> {answer.describe()}")
            if not lenient:
                self._explain(node, app, query, answer, low, reply)
            return UNEXPLAINED
        if not quiet:
            self.note(f"{node.name} {query.describe()} -> {answer.describe()[:160]}")
        return matched

    def _info_ok(self, app: str, low: int) -> InfoCheck:
        """user_info is read from the store when the answer is made, so it may come from any state
        from `low` on (or from a write waiting to be settled)."""
        states = [v.state for v in self.histories[app].versions[low:]]
        if self.pending is not None and self.pending.app == app:
            states.append(self.pending.after)

        def ok(group: str, uid: str, info: str) -> bool:
            # A stale (allowed) index may still hold a user whose record the store no longer has:
            # its user_info then reads as empty.
            return any(
                user.info == info if (user := s.user(group, uid)) is not None else info == "" for s in states
            )

        return ok

    def _match(self, answer: Answer, query: Query, app: str, versions: range, info_from: int) -> int | None:
        """The newest of `versions` whose brute force the answer equals."""
        history = self.histories[app]
        info_ok = self._info_ok(app, info_from)
        for number in versions:
            if not compare(
                answer, expect(history.versions[number].state, query, self.score), TOLERANCE, info_ok
            ):
                return number
        return None

    def _explain(self, node: Node, app: str, query: Query, answer: Answer, low: int, reply: Reply) -> None:
        history = self.histories[app]
        older = self._match(answer, query, app, range(low - 1, max(-1, low - 300), -1), 0)
        if older is not None:
            added, removed = changed_faces(
                history.versions[older].state, history.versions[low].state, query.groups
            )
            kinds = (["deleted-returned"] if removed else []) + (["not-visible"] if added else [])
            missed = "; ".join(
                f"{v.note} ({reply.started - v.acked_at:.2f} s before the search)"
                for v in history.versions[older + 1 : low + 1]
            )
            self.violate(
                "+".join(kinds) or "stale",
                f"{node.name} answered {query.describe()} with {answer.describe()}, "
                f"the state before: {missed}. "
                f"Promise: {LAG:g} s (+{STALE_SLACK:g} s slack; judged with {self.window:g} s)",
            )
            return
        info_ok = self._info_ok(app, low)
        for gate in range(history.last, low - 1, -1):
            for searched in range(history.last, low - 1, -1):
                if gate == searched:
                    continue
                mixed = expect(
                    history.versions[searched].state, query, self.score, history.versions[gate].state
                )
                if not compare(answer, mixed, TOLERANCE, info_ok):
                    self.violate(
                        "mixed-read",
                        f"{node.name} answered {query.describe()} with {answer.describe()}: the groups' "
                        f"existence as of version {gate} ({history.versions[gate].note}), the search as "
                        f"of version {searched} ({history.versions[searched].note}); no one state "
                        "gives that answer",
                        query.kind,
                    )
                    return
        problems = compare(answer, expect(history.latest, query, self.score), TOLERANCE, info_ok)
        self.violate(
            "brute-force",
            f"{node.name} answered {query.describe()} with {answer.describe()}; brute force over the model "
            f"(version {history.last}, allowed from {low}): {'; '.join(problems)}",
            query.kind,
        )

    def _verify(
        self,
        app: str,
        write: Write,
        before: State,
        version: int,
        first: Node | None,
        lenient_until: float = 0.0,
    ) -> None:
        """Every node shows an acknowledged write within the promise (at once on the node that
        acknowledged it): searches chosen to reveal it, polled."""
        state = self.histories[app].versions[version].state
        probes = self._probes(write, before, state)
        nodes = sorted(self._alive(), key=lambda n: n is not first)
        deadline = self.histories[app].versions[version].acked_at + VISIBLE_POLL
        for node in nodes:
            if self._excused(node, app, time.monotonic()):
                continue  # the sweep at the end of its fault checks it
            for groups, photo in probes:
                kind = (
                    "v2-identify"
                    if write.kind == "v3-group-delete" or self.rng.random() < 0.7
                    else "v3-search"
                )
                self._check(
                    node,
                    app,
                    Query(kind, groups, photo, 5),
                    target=version,
                    deadline=max(deadline, lenient_until),
                    lenient_until=lenient_until,
                )

    def _probes(self, write: Write, before: State, after: State) -> list[tuple[tuple[str, ...], Photo]]:
        """Searches that reveal whether a node holds this write: the written photo in its group, a
        deleted user's photo where it was, the copied user in the target group, ..."""
        kind = write.kind
        if kind in ("v3-add", "v3-update") and write.photo is not None:
            return [((write.group,), write.photo)]
        if kind == "v2-add" and write.photo is not None:
            return [((g,), write.photo) for g in list(dict.fromkeys(write.groups))[:2]]
        if kind in ("v3-delete", "v2-delete"):
            gone = [g for g in before.groups_of(write.uid) if after.user(g, write.uid) is None]
            probes: list[tuple[tuple[str, ...], Photo]] = []
            for group in gone[:2]:
                user = before.user(group, write.uid)
                if user is not None and user.faces:
                    probes.append(((group,), self.rng.choice(user.faces)))
            return probes
        if kind == "v3-copy":
            user = after.user(write.dst, write.uid)
            return [((write.dst,), user.faces[0])] if user is not None and user.faces else []
        if kind == "v3-face-delete":
            user = before.user(write.group, write.uid)
            deleted = [p for p in user.faces if p.sha256.startswith(write.token)] if user is not None else []
            return [((write.group,), deleted[0])] if deleted else []
        if kind == "v3-group-delete":
            faces = [p for u in before.groups.get(write.group, {}).values() for p in u.faces]
            return [((write.group,), faces[0])] if faces else []
        if kind == "import":
            return [((write.group,), photos[0]) for _, photos in write.imported[:2] if photos]
        return []

    # Concurrent writers ----------------------------------------------------------------------------

    def _burst(self) -> None:
        """Each node enrols BURST_WRITES new photos into the first app at once (APPEND, no user_info:
        such adds commute, so the model can take them in any order), while a third client searches
        groups the burst does not touch. Refusals are checked as they come; each add is checked on
        every node once all are answered."""
        app = self.apps[0]
        blocked = self._blocked(app)
        groups = [g for g in GROUPS if g not in blocked]
        written = set(self.rng.sample(groups, min(len(groups), 2)))
        others = [g for g in self.histories[app].latest.groups if g not in blocked | written]
        nodes = self._alive()
        plans = {
            node.name: [
                Write(
                    "v3-add",
                    group=self.rng.choice(sorted(written)),
                    uid=self.rng.choice(UIDS),
                    photo=self._fresh_photo(),
                    action="APPEND",
                )
                for _ in range(BURST_WRITES)
            ]
            for node in nodes
        }
        queries = [
            (self.rng.choice(nodes), Query("v3-search", (g,), self.rng.choice(self.pool.photos), 3))
            for g in (self.rng.choices(others, k=2 * BURST_WRITES) if others else [])
        ]
        answers: dict[str, list[tuple[Write, Reply]]] = {node.name: [] for node in nodes}
        searched: list[tuple[Node, Query, Reply]] = []

        def writer(node: Node) -> None:
            for write in plans[node.name]:
                answers[node.name].append((write, self._send_write(node, app, write)))

        def searcher() -> None:
            for node, query in queries:
                searched.append((node, query, self._send_query(node, app, query)))

        threads = [threading.Thread(target=writer, args=(node,)) for node in nodes]
        threads.append(threading.Thread(target=searcher))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=2 * REQUEST_TIMEOUT)
        self.note(f"burst: {sum(len(p) for p in plans.values())} adds on {len(nodes)} node(s) at once")
        for node, query, reply in searched:
            self._judge(node, app, query, reply)
        done = sorted(
            ((write, reply, node) for node in nodes for write, reply in answers[node.name]),
            key=lambda item: (item[1].code != OK, item[1].finished),
        )
        # The acknowledged adds enter the model first (in the order they were answered), then the
        # others are judged (and settled against a store that holds all of them), then every add is
        # checked on every node against the model that holds them all.
        deferred: list[Deferred] = []
        for write, reply, node in done:
            self._handle_write(node, app, write, reply, deferred)
        # Until the promise has passed since the last answer, a node may show the adds in their
        # commit order, whose intermediate states the model (in answer order) does not have.
        settled = max((reply.finished for _, reply, _ in done), default=0.0) + self.window
        for item in deferred:
            self._verify(
                item.app, item.write, item.before, item.version, first=item.node, lenient_until=settled
            )

    # Imports ---------------------------------------------------------------------------------------

    def _start_import(self, planned: PlannedImport) -> None:
        rng = self.rng
        app = rng.choice(self.apps)
        state = self.histories[app].latest
        if (self.pending is not None and self.pending.app == app) or len(self.unused) < 6:
            return
        registered = list(state.groups)
        group = rng.choice(registered) if registered and rng.random() < 0.6 else rng.choice(GROUPS)
        uids = rng.sample(UIDS, rng.randint(2, 3))
        imported = tuple(
            (uid, tuple(self._fresh_photo() for _ in range(rng.randint(1, 2)))) for uid in sorted(uids)
        )
        write = Write("import", group=group, imported=imported)
        self.imports_made += 1
        folder = self.scratch / f"import-{self.seed}-{self.imports_made}"
        planned.app = app
        self._taint(app)
        planned.run = ImportRun(self.deployment, app, write, folder)
        self.importing = planned
        self.note(f"import started: {write.describe()} (app {app})")

    def _finish_import(self, planned: PlannedImport) -> None:
        run = planned.run
        assert run is not None
        code, failed, output = run.finish()
        self.importing = None
        app = planned.app
        history = self.histories[app]
        self.report.operations += 1
        if code is None:
            self.violate("import", f"renlian import did not finish in {IMPORT_TIMEOUT:.0f} s: {output}")
            return
        exited = run.exited_at or time.monotonic()
        self.note(
            f"import ended ({code}) {time.monotonic() - run.started:.1f} s after its start, "
            f"failed: {sorted(failed) or 'none'}"
        )
        write = run.write
        before = history.latest
        _, after = apply(before, write)
        if code == 0 and not failed:
            self._acknowledged(None, app, write, before, after, exited)
            return
        # Exit 1 lists the photos that failed; any other exit (2: it could not even open the store)
        # says nothing of any photo. Either way the store decides.
        during_fault = any(b <= exited and e >= run.started for b, e in self.fault_times) or any(
            f.started and not f.ended for f in self.faults
        )
        if not during_fault:
            self.violate("import", f"renlian import exited {code} outside any fault: {output}")
        names = {p.name for _, photos in write.imported for p in photos}
        required = frozenset(names - failed) if code == 1 else frozenset()
        reply = Reply(None, {}, f"import exit {code}", run.started, exited)
        self.pending = Pending(app, write, before, after, {write.group}, None, reply, "import", required)
        self._settle()

    # Quota -----------------------------------------------------------------------------------------

    def _quota_burst(self) -> None:
        app = self.quota_app
        assert app is not None
        limit = self.options.quota_total
        nodes = self._alive()
        tokens = {node.name: token_for(node.base_url, app) for node in nodes}
        codes: list[int | None] = []
        per_thread = math.ceil(1.5 * limit)

        def client(offset: int) -> None:
            with httpx.Client(timeout=REQUEST_TIMEOUT) as http:
                for number in range(per_thread):
                    node = nodes[(offset + number) % len(nodes)]
                    try:
                        response = http.post(
                            f"{node.base_url}{V3}/faceset/group/getlist",
                            params={"access_token": tokens[node.name]},
                            json={"start": 0, "length": 10},
                        )
                        codes.append(int(response.json().get("error_code") or 0))
                    except (httpx.HTTPError, ValueError):
                        codes.append(None)

        threads = [threading.Thread(target=client, args=(offset,)) for offset in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        admitted = codes.count(OK)
        self.report.operations += len(codes)
        self.note(
            f"quota burst: {len(codes)} requests over {len(nodes)} node(s) to an app with "
            f"--total {limit}: {admitted} admitted"
        )
        allowed = limit - 1 if self.options.sabotage == "quota" else limit
        if admitted > allowed:
            self.violate(
                "quota",
                f"an app with --total {limit} admitted {admitted} of {len(codes)} requests "
                f"spread over {len(nodes)} node(s)",
            )

    # Checks after each step and at the end ---------------------------------------------------------

    def _after_step(self) -> None:
        self._settle()
        self._count_check()

    def _due_sweeps(self, everything: bool = False) -> None:
        now = time.monotonic()
        due = [s for s in self.sweeps if everything or s[0] <= now]
        self.sweeps = [s for s in self.sweeps if s not in due]
        done = set()
        for _, node, app in due:
            if (node.name, app) in done or not node.alive:
                continue
            done.add((node.name, app))
            self._sweep(node, app)

    def _sweep(self, node: Node, app: str) -> None:
        """Searches of every group of the app on the node, against the latest state (after a fault,
        and at the end)."""
        state = self.histories[app].latest
        blocked = self._blocked(app)
        groups = [g for g, users in state.groups.items() if users and g not in blocked]
        self.rng.shuffle(groups)
        for group in groups[: self.options.sweep_limit]:
            users = list(state.groups[group].values())
            photo = self.rng.choice(self.rng.choice(users).faces)
            self._check(node, app, Query("v2-identify", (group,), photo, 5))
        if len(groups) > 1:
            probe = self.rng.choice(self.pool.photos)
            self._check(node, app, Query("v3-search", tuple(groups[:3]), probe, 6))

    def _reload_check(self, node: Node, text: str) -> None:
        """A node reloads an app from the store only after a fault (issue 20: never because its own
        or a concurrent write advanced the app): the counter must not move in quiet times."""
        found = re.search(r"^renlian_index_sync_reloads(?:_total)? (\S+)$", text, re.M)
        if found is None:
            return
        now, count = time.monotonic(), float(found.group(1))
        seen = self.reloads_seen.get(node.name)
        self.reloads_seen[node.name] = (node.starts, count, now)
        if seen is None or seen[0] != node.starts or count <= seen[1]:
            return
        since = seen[2] - SETTLE - ROWS_SETTLE
        faulty = any(f.started and not f.ended for f in self.faults) or any(
            e >= since for _, e in self.fault_times
        )
        if not faulty:
            self.violate(
                "reload",
                f"{node.name} reloaded from the store {count - seen[1]:g} time(s) in the last "
                f"{now - seen[2]:.1f} s with no fault (renlian_index_sync_reloads {count:g})",
            )

    def _count_check(self) -> None:
        if not self.count_check:
            return
        for node in self._alive():
            apps = [
                a for a in self.apps if not self._blocked(a) and not self._excused(node, a, time.monotonic())
            ]
            if not apps:
                continue
            for _ in range(100):  # bounded by the deadline below as well
                text = node.metrics()
                if text is None:
                    if not self._excused(node, apps[0], time.monotonic()):
                        self.violate("no-answer", f"{node.name} did not answer GET /metrics")
                    break
                self._reload_check(node, text)
                wrong = [
                    (a, node.index_faces(text, a), self.histories[a].latest.face_count())
                    for a in apps
                    if node.index_faces(text, a) != self.histories[a].latest.face_count()
                ]
                if not wrong:
                    break
                last_ack = max(self.histories[a].versions[-1].acked_at for a, _, _ in wrong)
                if time.monotonic() > last_ack + self.window:
                    self.violate(
                        "index-count",
                        f"{node.name}'s renlian_index_faces: "
                        + ", ".join(f"app {a} {got} faces, the model {want}" for a, got, want in wrong),
                    )
                    break
                time.sleep(0.05)

    def _finish(self) -> None:
        """End what is still open, then check every node and the store against the model."""
        for fault in self.faults:
            if fault.started and not fault.ended:
                self._end_fault(fault)
        if self.importing is not None:
            self._finish_import(self.importing)
        for _ in range(100):  # a pending write waits for a reader; bounded in time by the faults' end
            if self.pending is None:
                break
            self._settle()
            time.sleep(0.1)
        if self.pending is not None:
            self.violate("store", f"could not read the store to settle {self.pending.write.describe()}")
        latest_excuse = max(
            [until for until, _ in self.node_excuse.values()] + list(self.app_excuse.values()) + [0.0]
        )
        wait = min(latest_excuse - time.monotonic(), ROWS_SETTLE + SETTLE)
        if wait > 0:
            time.sleep(wait)
        for node in self._alive():
            for app in self.apps:
                self.sweeps.append((0.0, node, app))
        self._due_sweeps(everything=True)
        self._count_check()
        reader = self._reader()
        if reader is None:
            self.violate("recovery", "no node can read the store at the end")
            return
        for app in self.apps:
            shown = self._read_store(reader, app, None)
            if shown is None:
                self.violate("recovery", f"{reader.name} could not read app {app}'s library at the end")
                continue
            latest = self.histories[app].latest
            if self.options.sabotage == "store" and not self.sabotaged and latest.groups:
                self.sabotaged = True
                group = next(iter(latest.groups))
                latest = latest.with_group(group, None)  # the model "forgets" a whole group
            expected = latest.projection(shown.keys())
            if shown != expected:
                self.violate(
                    "store",
                    f"app {app}: the store holds {_describe_projection(_differing(shown, expected))}, "
                    f"the model {_describe_projection(_differing(expected, shown))}",
                )

    def _restore(self) -> None:
        """Leave the deployment as the next seed needs it: database up, every node up and flowing,
        no flag file, no import running."""
        if self.importing is not None and self.importing.run is not None:
            self.importing.run.kill()
        deployment = self.deployment
        if deployment.cluster is not None and deployment.database_stopped:
            deployment.cluster.start_server()
            deployment.database_stopped = False
        for node in deployment.nodes:
            node.flag.unlink(missing_ok=True)
            if node.proxy is not None:
                node.proxy.resume()
            if not node.alive:
                node.start()

    def _reloads(self) -> dict[str, float]:
        found = {}
        for node in self._alive():
            text = node.metrics() or ""
            match = re.search(r"^renlian_index_sync_reloads(?:_total)? (\S+)$", text, re.M)
            if match:
                found[node.name] = float(match.group(1))
        return found


def replay_command(seed: int, deployment: Deployment, options: Options) -> str:
    kinds = ",".join(options.fault_kinds or deployment.fault_kinds)
    command = (
        f"python -m bench.consistency --config {deployment.name} --seed {seed} --seeds 1 "
        f"--steps {options.steps} --faults {options.faults} --fault-kinds {kinds} "
        f"--imports {options.imports} --pool-size {options.pool_size} --sweep-limit {options.sweep_limit}"
    )
    if not options.quota:
        command += " --no-quota"
    if options.sabotage:
        command += f" --sabotage {options.sabotage}"
    return command


def parse_answer(query: Query, body: dict[str, Any]) -> Answer:
    code = int(body.get("error_code") or 0)
    if code:
        return Answer(code)
    if query.kind == "v2-identify":
        return Answer(
            OK,
            (
                tuple(
                    Hit(
                        r["group_id"],
                        r["uid"],
                        r["user_info"],
                        float(r["scores"][0]),
                        tuple(float(s) for s in r["scores"]),
                    )
                    for r in body.get("result", [])
                ),
            ),
        )
    result = body.get("result") or {}
    if query.kind == "v3-search":
        return Answer(OK, (_v3_hits(result.get("user_list", [])),))
    return Answer(OK, tuple(_v3_hits(face.get("user_list", [])) for face in result.get("face_list", [])))


def _v3_hits(users: list[dict[str, Any]]) -> tuple[Hit, ...]:
    return tuple(Hit(u["group_id"], u["user_id"], u["user_info"], float(u["score"])) for u in users)


def _differing(
    one: dict[str, dict[str, tuple[str, frozenset[str]]] | None],
    other: dict[str, dict[str, tuple[str, frozenset[str]]] | None],
) -> dict[str, dict[str, tuple[str, frozenset[str]]] | None]:
    """The groups of `one` that differ from `other`, with only their differing users."""
    out: dict[str, dict[str, tuple[str, frozenset[str]]] | None] = {}
    for group, users in one.items():
        theirs = other.get(group)
        if users == theirs:
            continue
        if users is None or theirs is None:
            out[group] = users
        else:
            out[group] = {uid: value for uid, value in users.items() if theirs.get(uid) != value}
    return out


def _describe_projection(shown: dict[str, dict[str, tuple[str, frozenset[str]]] | None]) -> str:
    parts = []
    for group, users in sorted(shown.items()):
        if users is None:
            parts.append(f"{group}: not registered")
        else:
            inner = ", ".join(
                f"{uid}(info={info!r}, {len(tokens)} faces: {','.join(sorted(t[:6] for t in tokens))})"
                for uid, (info, tokens) in sorted(users.items())
            )
            parts.append(f"{group}: [{inner}]")
    return "; ".join(parts) or "nothing"


@contextlib.contextmanager
def deployment(kind: str, root: Path, cluster: Cluster | None) -> Iterator[Deployment]:
    """A started deployment ("fleet" needs `cluster`), closed at the end."""
    if kind == "fleet":
        assert cluster is not None
        running = start_fleet(cluster, root)
    elif kind == "sqlite":
        running = start_sqlite(root)
    else:
        raise ValueError(kind)
    try:
        yield running
    finally:
        running.close()
