"""Where one request's CPU goes: each kind of request split into its stages, beside its models alone.

    python -m bench.profile [--repeats 20] [--json PATH] [--write-docs]

The server runs in this process (uvicorn on a thread, the app exactly as `renlian serve` builds it)
so that the functions each stage runs can be wrapped with a CPU clock; requests come from a bare
socket client that sends prepared bytes, so almost none of the process's CPU is the client's (its
own thread's CPU is subtracted). One request is in flight at a time, so the process's CPU time
while a stage runs is that stage's, whichever threads (onnxruntime's intra-op threads included) do
the work. Stages nest (a model's onnxruntime call inside its stage); each is reported exclusive of
the stages inside it. "HTTP, routing, auth and the rest" is the request's whole CPU less every
named stage: uvicorn, FastAPI, dependencies, pool hops, the event loop, the index's poll thread.

The floor of each model is the same model file run alone in this process, in a fresh onnxruntime
session with one thread, on the very input the request fed it (captured while it ran): what the
model costs with nothing around it. YuNet's floor runs through onnxruntime too, with the graph's
input size made free, on the padded blob OpenCV's FaceDetectorYN would build.

The photo is made from the committed test photos (a 640x480 JPEG with one face, and one with five
for multi-search), so this runs from a fresh clone. The search group holds 1,000 faces written
straight into the store (bench/library.py's gallery), with the probe's own face among them.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort

from bench.datasets import machine, read_bgr, write_section
from bench.latency import collage
from renlian.cli import _return_large_buffers_to_the_os
from renlian.models.cache import ModelCache, verify_file
from renlian.models.registry import BUNDLED, MODELS
from renlian.settings import Settings
from renlian.vision.analyzer import FaceAnalyzer, load_analyzer
from renlian.vision.attributes import ATTRIBUTE_FIELDS

GROUP = "gallery"
GALLERY = 1000
V2_FIELDS = ",".join(["landmark", *sorted(ATTRIBUTE_FIELDS)])
V3_FIELDS = "age,beauty,expression,face_shape,gender,glasses,race,quality,landmark"
OTHER = "HTTP, routing, auth and the rest"
# The profiler's own work (keeping each model's input for its floor): taken out of every figure.
PROFILER = "profiler"


# Stage clocks --------------------------------------------------------------------------------------


class Stages:
    """CPU seconds per stage, exclusive of the stages nested inside it (per thread)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._local = threading.local()

    def reset(self) -> dict[str, float]:
        taken, self.totals = dict(self.totals), defaultdict(float)
        return taken

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        stack: list[float] = self._local.__dict__.setdefault("stack", [])
        start = time.process_time()
        stack.append(0.0)
        try:
            yield
        finally:
            spent = time.process_time() - start
            inner = stack.pop()
            self.totals[name] += spent - inner
            if stack:
                stack[-1] += spent

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.stage(name):
                return fn(*args, **kwargs)

        return timed


class RecordedSession:
    """An onnxruntime session whose runs are a stage of their own and whose last input is kept."""

    def __init__(self, session: Any, name: str, stages: Stages) -> None:
        self._session = session
        self._name = name
        self._stages = stages
        self.last_feed: dict[str, np.ndarray] | None = None
        self.runs = 0

    def run(self, outputs: Any, feed: dict[str, np.ndarray], *args: Any) -> Any:
        with self._stages.stage(PROFILER):
            self.last_feed = {key: np.array(value, copy=True) for key, value in feed.items()}
        self.runs += 1
        with self._stages.stage(f"{self._name}: model (onnxruntime)"):
            return self._session.run(outputs, feed, *args)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._session, attribute)


@dataclass
class Capture:
    """The model inputs the requests fed, by model name, for the floors."""

    sessions: dict[str, RecordedSession] = field(default_factory=dict)
    detector_input: np.ndarray | None = None
    detector_runs: int = 0

    def runs(self) -> dict[str, int]:
        counted = {name: recorded.runs for name, recorded in self.sessions.items() if recorded.runs}
        if self.detector_runs:
            counted["yunet"] = self.detector_runs
        return counted

    def clear(self) -> None:
        for recorded in self.sessions.values():
            recorded.last_feed, recorded.runs = None, 0
        self.detector_input, self.detector_runs = None, 0


def _patch(owner: Any, attribute: str, stages: Stages, name: str) -> None:
    """Wrap owner.attribute as a stage; skipped where this commit has no such function."""
    original = getattr(owner, attribute, None)
    if original is not None:
        setattr(owner, attribute, stages.wrap(name, original))


def instrument(analyzer: FaceAnalyzer, stages: Stages) -> Capture:
    """Wrap what each stage of a request runs. Names missing at an older commit are skipped."""
    import fastapi.responses

    import renlian.api.body
    import renlian.api.v2.detect
    import renlian.api.v3.faces
    import renlian.auth.guard
    import renlian.core.faces
    import renlian.core.facetokens
    import renlian.library.library
    import renlian.vision.analyzer
    import renlian.vision.image

    capture = Capture()
    for module, attribute in ((renlian.api.body, "_form_fields"), (renlian.api.body, "_json_fields")):
        _patch(module, attribute, stages, "body parse")
    _patch(renlian.auth.guard.Guard, "enter", stages, "auth: token, app, quota")
    for module in (renlian.vision.image, renlian.core.faces):
        _patch(module, "decode_base64", stages, "base64 decode")
    for module in (renlian.vision.image, renlian.core.faces):
        _patch(module, "decode_bytes", stages, "image decode")
    _patch(renlian.vision.image, "_check_dimensions", stages, "image header check")
    _patch(type(analyzer.detector), "detect", stages, "detection: resize, blob, decode boxes")
    _patch(type(analyzer.pose), "__call__", stages, "pose: crop, normalise")
    _patch(type(analyzer.landmarks), "__call__", stages, "landmarks: crop, normalise")
    _patch(type(analyzer.liveness), "__call__", stages, "liveness: crop, normalise")
    net = analyzer.backbone.nets[analyzer.embedder.name]
    _patch(type(net), "__call__", stages, "backbone: normalise, copy")
    _patch(type(analyzer.attributes), "predict", stages, "attributes: heads")
    _patch(type(analyzer), "_describe", stages, "attributes: qualities measures")
    _patch(renlian.vision.analyzer, "align", stages, "alignment (112 px crop)")
    _patch(renlian.core.faces, "crop_jpeg", stages, "face_token: crop JPEG")
    _patch(renlian.core.faces, "with_origin", stages, "face_token: crop JPEG")
    _patch(renlian.core.facetokens.FaceTokenCache, "put", stages, "face_token: cache")
    _patch(renlian.library.library.FaceLibrary, "search_embeddings", stages, "search (1,000 faces)")
    _patch(renlian.library.library.FaceLibrary, "require_groups", stages, "search: group check")
    _patch(renlian.library.library.FaceLibrary, "add", stages, "library write (store, index)")
    _patch(renlian.api.v3.faces, "face_entry", stages, "answer: shaping")
    _patch(renlian.api.v2.detect, "face_result", stages, "answer: shaping")
    _patch(fastapi.responses.JSONResponse, "render", stages, "answer: JSON encoding")
    for name, model in (
        ("pose", analyzer.pose),
        ("landmarks", analyzer.landmarks),
        ("liveness", analyzer.liveness),
        (analyzer.embedder.name, net),
        *((f"{other} (attributes)", n) for other, n in analyzer.backbone.nets.items() if n is not net),
        ("yunet", analyzer.detector),
    ):
        session = getattr(model, "_session", None)
        if session is not None:
            recorded = RecordedSession(session, name, stages)
            model._session = recorded  # type: ignore[attr-defined]
            capture.sessions[name] = recorded
    _record_opencv_detector(analyzer, stages, capture)
    return capture


def _record_opencv_detector(analyzer: FaceAnalyzer, stages: Stages, capture: Capture) -> None:
    """Before onnxruntime ran YuNet, OpenCV's FaceDetectorYN did (one per thread): time its detect."""
    instance = getattr(analyzer.detector, "_instance", None)
    if instance is None:
        return

    class Recorded:
        def __init__(self, detector: Any) -> None:
            self._detector = detector

        def setInputSize(self, size: tuple[int, int]) -> None:  # noqa: N802 (OpenCV's name)
            self._detector.setInputSize(size)

        def detect(self, image: np.ndarray) -> Any:
            with stages.stage(PROFILER):
                capture.detector_input = image.copy()
            capture.detector_runs += 1
            with stages.stage("yunet: model (OpenCV)"):
                return self._detector.detect(image)

    analyzer.detector._instance = lambda: Recorded(instance())  # type: ignore[attr-defined]


# Floors: each model alone -------------------------------------------------------------------------


def cpu_ms(run: Callable[[], object], repeats: int) -> float:
    run()
    start = time.process_time()
    for _ in range(repeats):
        run()
    return (time.process_time() - start) / repeats * 1000


def one_thread_session(model: str | bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def yunet_any_size(path: Path) -> bytes:
    graph = onnx.load(str(path))
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "height", "width"
    for output in graph.graph.output:
        output.type.tensor_type.shape.ClearField("dim")
    del graph.graph.value_info[:]
    serialised: bytes = graph.SerializeToString()
    return serialised


def yunet_blob(resized: np.ndarray) -> np.ndarray:
    """What FaceDetectorYN feeds its net: the image padded right and down to multiples of 32."""
    height, width = resized.shape[:2]
    padded = cv2.copyMakeBorder(
        resized, 0, -height % 32, 0, -width % 32, cv2.BORDER_CONSTANT, value=(0, 0, 0)
    )
    blob: np.ndarray = padded.transpose(2, 0, 1)[None].astype(np.float32)
    return blob


class Floors:
    """Each model alone, one onnxruntime thread, on given inputs (CPU ms per run)."""

    def __init__(self, settings: Settings) -> None:
        cache = ModelCache(settings.model_cache())
        self.paths = cache.ensure(list(MODELS.values()))
        for name, bundled in BUNDLED.items():
            self.paths[name] = verify_file(bundled.path, bundled.sha256, name)
        self._sessions: dict[str, ort.InferenceSession] = {}

    def session(self, name: str) -> ort.InferenceSession:
        if name not in self._sessions:
            file = {"pose": "tddfa", "landmarks": "landmark106"}.get(name, name.split(" ")[0])
            source: str | bytes = str(self.paths[file])
            if file == "yunet":
                source = yunet_any_size(self.paths[file])
            self._sessions[name] = one_thread_session(source)
        return self._sessions[name]

    def run_ms(self, name: str, feed: dict[str, np.ndarray], repeats: int) -> float:
        session = self.session(name)
        names = [i.name for i in session.get_inputs()]
        values = list(feed.values())
        inputs = {key: value for key, value in zip(names, values, strict=False)}
        return cpu_ms(lambda: session.run(None, inputs), repeats)

    def yunet_ms(self, resized: np.ndarray, repeats: int) -> float:
        return self.run_ms("yunet", {"input": yunet_blob(resized)}, repeats)


def model_alone_ms(floor: Floors, name: str, feed: dict[str, np.ndarray], repeats: int) -> float:
    image = next(iter(feed.values()))
    if name == "yunet" and image.dtype == np.uint8:
        # The detector feeds its session 8-bit pixels and casts them in the graph; alone, the
        # network takes the float blob.
        return floor.yunet_ms(image[0], repeats)
    return floor.run_ms(name, feed, repeats)


def floors(floor: Floors, capture: Capture, per_request: dict[str, float], repeats: int) -> dict[str, float]:
    """Each model's floor in CPU ms per request: one run alone on the last input the requests fed it,
    times the runs a request makes (a face each, an image each)."""
    found: dict[str, float] = {}
    for name, recorded in capture.sessions.items():
        if recorded.last_feed is not None:
            found[name] = model_alone_ms(floor, name, recorded.last_feed, repeats) * per_request.get(name, 1)
    if capture.detector_input is not None:
        found["yunet"] = floor.yunet_ms(capture.detector_input, repeats) * per_request.get("yunet", 1)
    return found


# An in-process server and a bare client ------------------------------------------------------------


class InProcessServer:
    def __init__(self, data_dir: Path, analyzer: FaceAnalyzer) -> None:
        import uvicorn

        from renlian.api.app import create_app

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        settings = Settings(data_dir=data_dir, port=self.port)
        app = create_app(settings, lambda: analyzer)
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", log_config=None, access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if not self._thread.is_alive():
                raise RuntimeError("the in-process server exited during start-up")
            try:
                status = RawClient(self.port).request(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")[0]
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the in-process server did not become healthy")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=60)


class RawClient:
    """HTTP/1.1 over one keep-alive socket, sending prepared bytes: next to no client CPU."""

    def __init__(self, port: int) -> None:
        self._socket = socket.create_connection(("127.0.0.1", port))
        self._socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, raw: bytes) -> tuple[int, bytes]:
        self._socket.sendall(raw)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self._socket.recv(65536)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            received += chunk
        head, body = received.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            body += self._socket.recv(65536)
        return int(lines[0].split()[1]), body

    def close(self) -> None:
        self._socket.close()


def raw_post(path: str, token: str, body: bytes, content_type: str) -> bytes:
    head = (
        f"POST {path}?access_token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


# Requests ------------------------------------------------------------------------------------------


def jpeg_b64(image: np.ndarray) -> str:
    encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1]
    return base64.b64encode(encoded.tobytes()).decode()


@dataclass(frozen=True)
class Kind:
    label: str
    path: str
    # The i-th request's body and content type (user/add names a new user each time).
    body: Callable[[int], tuple[bytes, str]]


def form(**fields: str) -> tuple[bytes, str]:
    from urllib.parse import urlencode

    return urlencode(fields).encode(), "application/x-www-form-urlencoded"


def as_json(document: Any) -> tuple[bytes, str]:
    return json.dumps(document).encode(), "application/json"


def kinds(one_face: str, five_faces: str, second: str) -> list[Kind]:
    image = {"image": one_face, "image_type": "BASE64"}
    return [
        Kind("v2 detect", "/rest/2.0/face/v2/detect", lambda i: form(image=one_face)),
        Kind(
            "v2 detect +landmark +every attribute",
            "/rest/2.0/face/v2/detect",
            lambda i: form(image=one_face, face_fields=V2_FIELDS),
        ),
        Kind("v3 detect", "/rest/2.0/face/v3/detect", lambda i: as_json(image)),
        Kind(
            "v3 detect +landmark +attributes +quality",
            "/rest/2.0/face/v3/detect",
            lambda i: as_json({**image, "face_field": V3_FIELDS}),
        ),
        Kind(
            "v3 match (2 images)",
            "/rest/2.0/face/v3/match",
            lambda i: as_json([image, {"image": second, "image_type": "BASE64"}]),
        ),
        Kind(
            f"v3 search ({GALLERY:,} faces)",
            "/rest/2.0/face/v3/search",
            lambda i: as_json({**image, "group_id_list": GROUP}),
        ),
        Kind(
            f"v3 multi-search (5 faces, {GALLERY:,})",
            "/rest/2.0/face/v3/multi-search",
            lambda i: as_json(
                {"image": five_faces, "image_type": "BASE64", "group_id_list": GROUP, "max_face_num": 5}
            ),
        ),
        Kind(
            "v3 user/add",
            "/rest/2.0/face/v3/faceset/user/add",
            lambda i: as_json({**image, "group_id": f"added{i}", "user_id": f"user{i}"}),
        ),
    ]


@dataclass
class Profiled:
    label: str
    total_ms: float
    stages: dict[str, float]
    floors: dict[str, float]


def profile_kind(
    kind: Kind, port: int, token: str, stages: Stages, capture: Capture, floor: Floors, repeats: int
) -> Profiled:
    client = RawClient(port)
    counter = iter(range(1_000_000))
    try:
        for _ in range(3):  # warm-up: first-run allocations, per-thread state
            status, answer = client.request(raw_post(kind.path, token, *_body(kind, next(counter))))
            _check(kind, status, answer)
        stages.reset()
        capture.clear()
        totals = []
        sums: dict[str, float] = defaultdict(float)
        for _ in range(repeats):
            raw = raw_post(kind.path, token, *_body(kind, next(counter)))
            stages.reset()
            start, own = time.process_time(), time.thread_time()
            status, answer = client.request(raw)
            spent = (time.process_time() - start) - (time.thread_time() - own)
            _check(kind, status, answer)
            taken = stages.reset()
            spent -= taken.pop(PROFILER, 0.0)
            totals.append(spent)
            for name, seconds in taken.items():
                sums[name] += seconds
            sums[OTHER] += spent - sum(taken.values())
    finally:
        client.close()
    per_stage = {name: seconds / repeats * 1000 for name, seconds in sums.items()}
    per_request = {name: runs / repeats for name, runs in capture.runs().items()}
    model_floors = floors(floor, capture, per_request, max(5, repeats // 2))
    capture.clear()
    return Profiled(kind.label, statistics.fmean(totals) * 1000, per_stage, model_floors)


def _body(kind: Kind, index: int) -> tuple[bytes, str]:
    return kind.body(index)


def _check(kind: Kind, status: int, answer: bytes) -> None:
    document = json.loads(answer)
    if status != 200 or document.get("error_code", 0) != 0:
        raise RuntimeError(f"{kind.label}: {status} {answer[:300]!r}")


# The gallery ---------------------------------------------------------------------------------------


def gallery(data_dir: Path, analyzer: FaceAnalyzer, photo: np.ndarray, recognizer: str) -> dict[str, str]:
    """An app whose GROUP holds GALLERY faces: the probe's own face and synthetic ones."""
    from bench.library import RealFace, build_store
    from tests.conftest import create_app

    app = create_app(data_dir)
    embedding, aligned = analyzer.enrolment_face(photo)
    crop = cv2.imencode(".jpg", aligned, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    data = cv2.imencode(".jpg", photo)[1].tobytes()
    real = RealFace(hashlib.sha256(data).hexdigest(), embedding, crop)
    build_store(data_dir / "renlian.sqlite3", app["app_id"], GALLERY, recognizer, embedding.shape[0], real)
    return app


def token(port: int, app: dict[str, str]) -> str:
    path = (
        "/oauth/2.0/token?grant_type=client_credentials"
        f"&client_id={app['api_key']}&client_secret={app['secret_key']}"
    )
    client = RawClient(port)
    try:
        _, answer = client.request(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    finally:
        client.close()
    issued: str = json.loads(answer)["access_token"]
    return issued


def register_group(port: int, issued: str) -> None:
    """v3 searches only groups it has registered; the gallery's rows were written behind its back."""
    client = RawClient(port)
    try:
        raw = raw_post("/rest/2.0/face/v3/faceset/group/add", issued, *as_json({"group_id": GROUP}))
        status, answer = client.request(raw)
    finally:
        client.close()
    if status != 200 or json.loads(answer).get("error_code") not in (0, 223101):
        raise RuntimeError(f"group/add: {status} {answer[:300]!r}")


# Report --------------------------------------------------------------------------------------------


def table(results: list[Profiled]) -> list[str]:
    lines = []
    for result in results:
        lines += [
            f"**{result.label}**: {result.total_ms:.1f} ms of CPU per request",
            "",
            "| stage | CPU ms | its model alone (1 thread, same input) |",
            "|---|---|---|",
        ]
        for name, ms in sorted(result.stages.items(), key=lambda item: -item[1]):
            model = name.split(":")[0]
            alone = result.floors.get(model) if name.endswith(")") and "model" in name else None
            lines.append(f"| {name} | {ms:.2f} | {'' if alone is None else f'{alone:.2f}'} |")
        models = sum(result.floors.values())
        lines += [
            "",
            f"Its models alone: {models:.1f} ms; the request costs {result.total_ms / models:.2f}x that."
            if models
            else "",
            "",
        ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--photo", type=Path, help="profile this photo instead of the 640x480 one")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--write-docs", action="store_true", help="put the table into docs/benchmarks.md")
    args = parser.parse_args()
    # As `renlian serve` runs: large arrays are fresh pages each time (renlian/cli.py says why).
    _return_large_buffers_to_the_os()
    settings = Settings()
    analyzer = load_analyzer(ModelCache(settings.model_cache()), settings.analyzer_config())
    one = read_bgr(args.photo) if args.photo else collage(1, 640)
    photos = {
        "one_face": jpeg_b64(one),
        "five_faces": jpeg_b64(collage(5, 640)),
        "second": jpeg_b64(read_bgr(Path(__file__).parents[1] / "tests" / "data" / "grace_hopper.jpg")),
    }
    stages = Stages()
    floor = Floors(settings)
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = Path(scratch) / "data"
        app = gallery(data_dir, analyzer, one, settings.recognizer)
        capture = instrument(analyzer, stages)
        server = InProcessServer(data_dir, analyzer)
        try:
            issued = token(server.port, app)
            register_group(server.port, issued)
            results = []
            for kind in kinds(photos["one_face"], photos["five_faces"], photos["second"]):
                results.append(profile_kind(kind, server.port, issued, stages, capture, floor, args.repeats))
                print(f"{kind.label}: {results[-1].total_ms:.1f} ms CPU", flush=True)
        finally:
            server.stop()
    header = [
        f"Measured {machine()}, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the start; "
        f"`python -m bench.profile --repeats {args.repeats}`; recognizer {settings.recognizer}, "
        f"{settings.inference_workers} inference worker(s) x {settings.threads_per_worker} threads. "
        f"Photo: {f'{args.photo.name} ({one.shape[1]}x{one.shape[0]})' if args.photo else '640x480 JPEG'}, "
        "one face (a 640x480 one with five for multi-search); CPU ms are means over "
        f"{args.repeats} requests, one at a time.",
        "",
    ]
    lines = header + table(results)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "machine": machine(),
                    "load_average": load,
                    "repeats": args.repeats,
                    "requests": [result.__dict__ for result in results],
                },
                indent=2,
            )
        )
    if args.write_docs:
        write_section(Path("docs/benchmarks.md"), "profile", lines)


if __name__ == "__main__":
    main()
