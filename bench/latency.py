"""Detect and match latency, in process ("server time") and over HTTP, at concurrency 1 and 4.

    python -m bench.latency [--requests 40] [--protocols] [--write-docs]

Images are made from the committed test photos, so this needs no shared data: one face, or five
faces in a collage, scaled to 320, 640 and 1280 px wide JPEGs. "Server time" runs exactly what the
server runs for a request (base64 decode, image decode, models) in this process with the server's
thread settings; "HTTP" starts `renlian serve` on a free port and times whole requests from a client
on the same machine. Concurrency 4 runs four client threads and reports throughput.

The v3 rows repeat v2 rows' work through the v3 protocol (JSON bodies, as today's SDKs send them), on
the same server in the same run: the same work should cost the same, within noise. `--protocols`
runs only those pairs.
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from bench.datasets import machine, read_bgr, write_section
from renlian.models.cache import ModelCache
from renlian.settings import Settings
from renlian.vision.analyzer import FaceAnalyzer, load_analyzer
from renlian.vision.attributes import ATTRIBUTE_FIELDS
from renlian.vision.image import decode_image
from tests.conftest import start_server

PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data"
WIDTHS = (320, 640, 1280)
SEARCH_GROUP = "latency"
ATTRIBUTES = ",".join(sorted(ATTRIBUTE_FIELDS))
HEADER = (
    "| request | server time p50 / p95 ms | HTTP c=1 p50 / p95 ms | HTTP c=4 p50 / p95 ms | c=4 req/s |",
    "|---|---|---|---|---|",
)


def collage(faces: int, width: int) -> np.ndarray:
    """A 4:3 canvas holding `faces` portraits side by side, scaled to `width`."""
    portraits = [read_bgr(PHOTOS / name) for name in ("astronaut.jpg", "grace_hopper.jpg")]
    tiles = [cv2.resize(portraits[i % 2], (240, 270)) for i in range(faces)]
    columns = min(faces, 3)
    rows = -(-faces // columns)
    canvas = np.full((rows * 270, columns * 240, 3), 110, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        canvas[r * 270 : (r + 1) * 270, c * 240 : (c + 1) * 240] = tile
    height = round(width * 3 / 4)
    framed = np.full((height, width, 3), 110, np.uint8)
    scale = min(width / canvas.shape[1], height / canvas.shape[0])
    fitted = cv2.resize(canvas, (round(canvas.shape[1] * scale), round(canvas.shape[0] * scale)))
    framed[: fitted.shape[0], : fitted.shape[1]] = fitted
    return framed


def jpeg_b64(image: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()).decode()


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: first-run allocations and lazy per-thread detector creation
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


Payload = dict[str, str] | list[dict[str, str]]


def post(client: httpx.Client, url: str, payload: Payload) -> dict[str, Any]:
    """v2 takes forms; v3 takes JSON (an array for match). Both answer error_code only on error (v2)
    or 0 on success (v3)."""
    response = (
        client.post(url, data=payload)
        if isinstance(payload, dict) and "/v2/" in url
        else client.post(url, json=payload)
    )
    body: dict[str, Any] = response.json()
    assert body.get("error_code", 0) == 0, body
    return body


def http_run(
    url: str, token: str, payload: Payload, repeats: int, concurrency: int
) -> tuple[list[float], float]:
    """Per-request milliseconds and requests per second over `repeats` requests."""
    with httpx.Client(timeout=60, params={"access_token": token}) as client:
        post(client, url, payload)

        def one(_: int) -> float:
            start = time.perf_counter()
            post(client, url, payload)
            return (time.perf_counter() - start) * 1000

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            samples = list(pool.map(one, range(repeats)))
        return samples, repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--protocols", action="store_true", help="only the rows that compare v2 and v3")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    analyzer: FaceAnalyzer = load_analyzer(ModelCache(settings.model_cache()), settings.analyzer_config())
    limits = settings.image_limits()

    cases: list[tuple[str, str, Payload, Callable[[], object]]] = []
    for faces in (1, 5):
        for width in WIDTHS:
            text = jpeg_b64(collage(faces, width))
            for fields in ("", "landmark", ATTRIBUTES, f"landmark,{ATTRIBUTES}"):
                if fields and (faces, width) != (1, 640):
                    continue

                def run_detect(text: str = text, faces: int = faces, fields: str = fields) -> object:
                    asked = frozenset(fields.split(",")) if fields else frozenset()
                    return analyzer.detect(
                        decode_image(text, limits),
                        faces,
                        landmarks="landmark" in asked,
                        attributes=asked & ATTRIBUTE_FIELDS,
                    )

                label = f"detect, {faces} face{'s' * (faces > 1)}, {width}x{round(width * 3 / 4)}" + (
                    {"landmark": ", +landmark", ATTRIBUTES: ", +every attribute"}.get(
                        fields, ", +landmark +every attribute"
                    )
                    if fields
                    else ""
                )
                form = {"image": text, "max_face_num": str(faces), "face_fields": fields}
                cases.append((label, "/rest/2.0/face/v2/detect", form, run_detect))
    pair = [jpeg_b64(collage(1, 640)), jpeg_b64(read_bgr(PHOTOS / "grace_hopper.jpg"))]

    for liveness in (False, True):

        def match_side(liveness: bool = liveness) -> object:
            return [analyzer.probe(decode_image(text, limits), liveness=liveness) for text in pair]

        form = {"images": ",".join(pair), "image_liveness": "faceliveness,faceliveness" if liveness else ""}
        label = "match, 2 images (640x480, 512x600)" + (", +liveness of both" if liveness else "")
        cases.append((label, "/rest/2.0/face/v2/match", form, match_side))

    # The same work through v3: detect and match as above, and a search against the group that the
    # server's set-up below enrols, beside v2's identify of the same photo.
    v2_detect = next(case for case in cases if case[0] == "detect, 1 face, 640x480")
    one_face = jpeg_b64(collage(1, 640))
    cases.append(
        (
            "v3 detect, 1 face, 640x480",
            "/rest/2.0/face/v3/detect",
            {"image": one_face, "image_type": "BASE64"},
            v2_detect[3],
        )
    )
    v2_match = next(case for case in cases if case[0].startswith("match") and "liveness" not in case[0])
    cases.append(
        (
            "v3 match, 2 images (640x480, 512x600)",
            "/rest/2.0/face/v3/match",
            [{"image": text, "image_type": "BASE64"} for text in pair],
            v2_match[3],
        )
    )

    def search_side() -> object:
        return analyzer.probe(decode_image(one_face, limits), liveness=False)

    cases.append(
        (
            "identify, 1 face, 640x480, group of 2",
            "/rest/2.0/face/v2/identify",
            {"images": one_face, "group_id": SEARCH_GROUP},
            search_side,
        )
    )
    cases.append(
        (
            "v3 search, 1 face, 640x480, group of 2",
            "/rest/2.0/face/v3/search",
            {"image": one_face, "image_type": "BASE64", "group_id_list": SEARCH_GROUP},
            search_side,
        )
    )
    if args.protocols:
        twins = {label.removeprefix("v3 ") for label, *_ in cases if label.startswith("v3 ")}
        twins |= {"identify, 1 face, 640x480, group of 2", "match, 2 images (640x480, 512x600)"}
        cases = [case for case in cases if case[0].removeprefix("v3 ") in twins]

    # What liveness costs on its own, per face: the budget is 25 ms on 2 cores.
    portrait = read_bgr(PHOTOS / "astronaut.jpg")
    face = analyzer.largest_face(portrait)
    liveness_ms = percentiles(timed(lambda: analyzer.liveness(portrait, face), args.requests))

    rows = []
    server_p50: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            for uid, name in (("astronaut", "astronaut.jpg"), ("hopper", "grace_hopper.jpg")):
                enrol = {
                    "uid": uid,
                    "user_info": uid,
                    "group_id": SEARCH_GROUP,
                    "images": jpeg_b64(read_bgr(PHOTOS / name)),
                }
                assert "error_code" not in server.call("/rest/2.0/face/v2/faceset/user/add", **enrol)
            for label, path, payload, server_side in cases:
                inner = percentiles(timed(server_side, args.requests))
                server_p50[label] = inner[0]
                one, _ = http_run(server.base_url + path, server.token, payload, args.requests, 1)
                four, throughput = http_run(
                    server.base_url + path, server.token, payload, args.requests * 2, 4
                )
                h1, h4 = percentiles(one), percentiles(four)
                rows.append(
                    f"| {label} | {inner[0]:.1f} / {inner[1]:.1f} | {h1[0]:.1f} / {h1[1]:.1f} | "
                    f"{h4[0]:.1f} / {h4[1]:.1f} | {throughput:.1f} |"
                )
                print(rows[-1], flush=True)
        finally:
            server.stop()
    table = [
        f"Measured {machine()}; recognizer {settings.recognizer}, {settings.inference_workers} inference "
        f"workers x {settings.threads_per_worker} threads, {args.requests} requests per cell "
        f"(twice that at concurrency 4), OMP/OpenBLAS settings as in the environment "
        f"({os.environ.get('OPENBLAS_CORETYPE', 'no OPENBLAS_CORETYPE')}).",
        "",
        *HEADER,
        *rows,
        "",
        f"Liveness alone, one face (in process): {liveness_ms[0]:.1f} / {liveness_ms[1]:.1f} ms p50 / p95.",
    ]
    print("\n".join(table))
    if args.protocols:
        if args.write_docs:
            write_section(Path("docs/benchmarks.md"), "protocols", table)
        return
    base, full = "detect, 1 face, 640x480", "detect, 1 face, 640x480, +every attribute"
    attributes = [
        f"Measured {machine()}, {settings.inference_workers} inference workers x "
        f"{settings.threads_per_worker} threads. Every attribute field (age, beauty, expression, faceshape, "
        "gender, glasses, race, qualities) on one 640x480 face adds "
        f"**{server_p50[full] - server_p50[base]:.1f} ms** server time p50 to a default detect "
        f"({server_p50[base]:.1f} -> {server_p50[full]:.1f} ms; budget 60 ms).",
        "",
        *HEADER,
        *(row for row in rows if "1 face, 640x480" in row),
    ]
    print("\n".join(attributes))
    if args.write_docs:
        write_section(Path("docs/benchmarks.md"), "latency", table)
        write_section(Path("docs/attributes.md"), "attributes-latency", attributes)


if __name__ == "__main__":
    main()
