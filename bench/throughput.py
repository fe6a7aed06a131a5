"""Throughput of a real server under 1, 2, 4 and 8 clients, against what its CPU per request allows.

    python -m bench.throughput [--photos DIR] [--requests 120] [--clients 1,2,4,8] [--json PATH]
                               [--server-env NAME=VALUE ...] [--write-docs]

`renlian serve` runs in a subprocess with its default settings (or those given with --server-env);
clients send prepared request bytes over keep-alive sockets from threads of this process, so the
clients' own CPU stays small (it is reported). For each kind of request and number of clients:

- CPU ms per request: the server process's CPU time (user + system, every thread) over the run,
  divided by the requests it answered;
- requests per second, and the p50 latency a client saw;
- the ceiling, cores x 1000 / CPU ms per request: the rate at which the server's own cost would fill
  every core; the ratio says how much of it the server reaches, and "cores busy" (the server's CPU
  seconds per second) whether it was starved by other work or left cores idle itself;
- its models alone: the same models, one onnxruntime thread each, on the same photos in this
  process (bench/profile.py's floors): YuNet and 3DDFA for detect, YuNet and the recognizer for
  search; the CPU per request over that is what the service adds around its models.

Photos: the first photos of --photos (default ../shared/data/lfw/images, LFW's 250x250 faces), or the
committed test photos where that folder is missing, so it runs from a fresh clone. The search group
holds 1,000 faces (bench/library.py's gallery, with the first photo's face among them). The v1, v2
and v3 detect of a 640x480 photo (bench/latency.py's) are timed with one client for their p50.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from bench.datasets import machine, read_bgr, write_section
from bench.latency import collage
from bench.profile import (
    GALLERY,
    GROUP,
    Floors,
    RawClient,
    Stages,
    as_json,
    form,
    gallery,
    instrument,
    jpeg_b64,
    model_alone_ms,
    raw_post,
    register_group,
)
from renlian.models.cache import ModelCache
from renlian.settings import Settings
from renlian.vision.analyzer import FaceAnalyzer, load_analyzer
from tests.conftest import start_server

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw" / "images"
FIXTURES = ROOT / "tests" / "data"
PHOTOS = 20


def photo_files(folder: Path, count: int) -> list[Path]:
    """One photo per person from `folder` (LFW's layout, or a flat folder), else the test photos."""
    if folder.is_dir():
        people = sorted(path for path in folder.iterdir() if path.is_dir())
        found = [sorted(person.glob("*.jpg"))[0] for person in people if any(person.glob("*.jpg"))]
        found += sorted(folder.glob("*.jpg"))
        if found:
            return found[:count]
    return sorted(FIXTURES.glob("*.jpg"))


@dataclass(frozen=True)
class Workload:
    label: str
    path: str
    bodies: list[bytes]
    content_type: str


@dataclass
class Run:
    label: str
    clients: int
    requests: int
    cpu_ms: float
    rps: float
    p50_ms: float
    ceiling_rps: float
    ratio: float
    client_cpu_ms: float
    # The server's CPU seconds per second of the run: how many cores it kept busy (others' work on a
    # shared machine leaves it fewer than the ceiling assumes).
    cores_busy: float


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are the 12th and 13th fields after the command name.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drive(port: int, token: str, pid: int, work: Workload, clients: int, requests: int) -> Run:
    raws = [raw_post(work.path, token, body, work.content_type) for body in work.bodies]
    sockets = [RawClient(port) for _ in range(clients)]
    latencies: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def client(index: int) -> None:
        mine = []
        for n in range(index, requests, clients):
            start = time.perf_counter()
            status, answer = sockets[index].request(raws[n % len(raws)])
            mine.append((time.perf_counter() - start) * 1000)
            if status != 200 or json.loads(answer).get("error_code", 0) != 0:
                failures.append(answer[:200].decode("utf-8", "replace"))
        with lock:
            latencies.extend(mine)

    try:
        for raw in raws[: 2 * clients]:  # warm-up: connections, per-thread state, first-run allocations
            sockets[0].request(raw)
        threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
        cpu_before, own_before = server_cpu_seconds(pid), time.process_time()
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - start
        cpu = server_cpu_seconds(pid) - cpu_before
        own = time.process_time() - own_before
    finally:
        for sock in sockets:
            sock.close()
    if failures:
        raise RuntimeError(f"{work.label}: {len(failures)} failed answers, e.g. {failures[0]}")
    cpu_ms = cpu / requests * 1000
    rps = requests / wall
    ceiling = (os.cpu_count() or 1) * 1000 / cpu_ms
    return Run(
        work.label,
        clients,
        requests,
        cpu_ms,
        rps,
        statistics.median(latencies),
        ceiling,
        rps / ceiling,
        own / requests * 1000,
        cpu / wall,
    )


def model_floors(analyzer: FaceAnalyzer, settings: Settings, photos: list[np.ndarray]) -> dict[str, float]:
    """CPU ms of each request's models alone (one thread each), averaged over the photos."""
    stages = Stages()
    capture = instrument(analyzer, stages)
    floor = Floors(settings)
    totals: dict[str, list[float]] = {"detect": [], "search": []}
    recognizer = analyzer.embedder.name
    for photo in photos:
        capture.clear()
        analyzer.detect(photo, 1)
        analyzer.probe(photo, liveness=False)
        yunet = (
            floor.yunet_ms(capture.detector_input, 10)
            if capture.detector_input is not None
            else model_alone_ms(floor, "yunet", capture.sessions["yunet"].last_feed or {}, 10)
        )
        pose = model_alone_ms(floor, "pose", capture.sessions["pose"].last_feed or {}, 10)
        embed = model_alone_ms(floor, recognizer, capture.sessions[recognizer].last_feed or {}, 10)
        totals["detect"].append(yunet + pose)
        totals["search"].append(yunet + embed)
    return {kind: statistics.fmean(values) for kind, values in totals.items()}


def workloads(photos: list[np.ndarray]) -> list[Workload]:
    texts = [jpeg_b64(photo) for photo in photos]
    detect = [as_json({"image": text, "image_type": "BASE64"})[0] for text in texts]
    search = [as_json({"image": text, "image_type": "BASE64", "group_id_list": GROUP})[0] for text in texts]
    return [
        Workload("v3 detect", "/rest/2.0/face/v3/detect", detect, "application/json"),
        Workload(f"v3 search ({GALLERY:,} faces)", "/rest/2.0/face/v3/search", search, "application/json"),
    ]


def wide_detects() -> list[Workload]:
    """v1, v2 and v3 detect of bench/latency.py's 640x480 photo: the latency target's request."""
    text = jpeg_b64(collage(1, 640))
    body, form_type = form(image=text)
    v3_body, json_type = as_json({"image": text, "image_type": "BASE64"})
    return [
        Workload("v1 detect, 640x480", "/rest/2.0/face/v1/detect", [body], form_type),
        Workload("v2 detect, 640x480", "/rest/2.0/face/v2/detect", [body], form_type),
        Workload("v3 detect, 640x480", "/rest/2.0/face/v3/detect", [v3_body], json_type),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=LFW)
    parser.add_argument("--requests", type=int, default=120, help="requests per kind and client count")
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--server-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    counts = [int(part) for part in args.clients.split(",")]
    extra = dict(item.split("=", 1) for item in args.server_env)
    files = photo_files(args.photos, PHOTOS)
    photos = [read_bgr(path) for path in files]
    settings = Settings()
    # The bench's own models: one thread, as the floors are measured.
    analyzer = load_analyzer(ModelCache(settings.model_cache()), settings.analyzer_config(threads=1))
    floors = model_floors(analyzer, settings, photos)
    load = os.getloadavg()
    runs: list[Run] = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        app = gallery(tmp / "data", analyzer, photos[0], settings.recognizer)
        server = start_server(tmp, extra_env=extra, app=app)
        try:
            port = int(server.base_url.rsplit(":", 1)[1])
            register_group(port, server.token)

            def measure(work: Workload, clients: int) -> Run:
                return drive(port, server.token, server.process.pid, work, clients, args.requests)

            for work in workloads(photos):
                for clients in counts:
                    runs.append(measure(work, clients))
                    print(runs[-1], flush=True)
            for work in wide_detects():
                runs.append(measure(work, 1))
                print(runs[-1], flush=True)
        finally:
            server.stop()
    source = "LFW" if files[0].is_relative_to(args.photos) else "the committed test photos"
    lines = report(runs, floors, settings, extra, source, len(files), load, args.requests)
    print("\n".join(lines))
    if args.json:
        document = {
            "machine": machine(),
            "load_average": load,
            "photos": [str(path) for path in files],
            "server_env": extra,
            "models_alone_ms": floors,
            "runs": [asdict(run) for run in runs],
        }
        args.json.write_text(json.dumps(document, indent=2))
    if args.write_docs:
        write_section(Path("docs/benchmarks.md"), "throughput", lines)


def report(
    runs: list[Run],
    floors: dict[str, float],
    settings: Settings,
    extra: dict[str, str],
    source: str,
    photos: int,
    load: tuple[float, float, float],
    requests: int,
) -> list[str]:
    workers = extra.get("RENLIAN_INFERENCE_WORKERS", str(settings.inference_workers))
    threads = extra.get("RENLIAN_THREADS_PER_WORKER", str(settings.threads_per_worker))
    lines = [
        f"Measured {machine()}, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} at the start; "
        f"`python -m bench.throughput` ({requests} requests per cell, {photos} photos from {source}); "
        f"server: {workers} inference worker(s) x {threads} threads"
        + (f", {', '.join(f'{k}={v}' for k, v in extra.items())}" if extra else "")
        + ".",
        "",
        "| request | clients | CPU ms / request | models alone ms (x) | req/s | ceiling req/s | "
        "ratio | cores busy | p50 ms | client CPU ms / request |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        kind = "search" if "search" in run.label else "detect"
        alone = floors[kind] if "640x480" not in run.label else None
        models = f"{alone:.1f} ({run.cpu_ms / alone:.2f}x)" if alone else "-"
        lines.append(
            f"| {run.label} | {run.clients} | {run.cpu_ms:.1f} | {models} | {run.rps:.1f} | "
            f"{run.ceiling_rps:.1f} | {run.ratio:.2f} | {run.cores_busy:.2f} | {run.p50_ms:.1f} | "
            f"{run.client_cpu_ms:.2f} |"
        )
    return lines


if __name__ == "__main__":
    main()
