"""Server memory under the most expensive requests a client may send, many at once.

Every request here is as large as the limits allow: user/update with as many 40-megapixel photos as
fit its 10 MB field (each one a face, so each is decoded and embedded), match with ten of them, and
detect with one. `--requests` of them (16 by default) are in flight together, in rounds, and the
server's peak resident memory (VmHWM) is read at the end. Bodies are bounded per request, photos are
decoded one at a time per request, and only the inference workers decode at all, so the peak should
be the models plus a few decoded photos, not the sum of what the requests carry.

    python -m bench.memory [--requests 16] [--rounds 2] [--write-docs]
"""

from __future__ import annotations

import argparse
import base64
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import httpx

from bench.datasets import machine, read_bgr, write_section
from bench.library import rss_mb
from tests.conftest import Server, start_server

PHOTO = Path(__file__).resolve().parent.parent / "tests" / "data" / "astronaut.jpg"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SIDE = 6324  # 6324 x 6324 = 39.99 megapixels, just under RENLIAN_MAX_IMAGE_PIXELS
PREFIX = "/rest/2.0/face/v2"


def huge_photos(count: int) -> list[str]:
    """`count` distinct 40-megapixel JPEGs of a face, compressed hard so that many fit in a request
    (distinct bytes: the same photo twice for a user would be refused as 216616 before enrolment)."""
    big = cv2.resize(read_bgr(PHOTO), (SIDE, SIDE), interpolation=cv2.INTER_LINEAR)
    photos = []
    for quality in range(20, 20 + count):
        ok, encoded = cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        photos.append(base64.b64encode(encoded.tobytes()).decode())
    return photos


def worst_requests(photos: list[str]) -> list[tuple[str, bytes]]:
    """(path, form body) of the largest request of each kind: as many photos as fit the field."""
    fitting: list[str] = []
    for photo in photos:
        if sum(len(p) + 1 for p in [*fitting, photo]) > 10 * 1024 * 1024:
            break
        fitting.append(photo)
    update = {"uid": "worst", "group_id": "memory", "action_type": "replace", "images": ",".join(fitting)}
    return [
        ("faceset/user/update", urllib.parse.urlencode(update).encode()),
        ("match", urllib.parse.urlencode({"images": ",".join(photos[:10])}).encode()),
        ("detect", urllib.parse.urlencode({"image": photos[0], "max_face_num": "50"}).encode()),
    ]


def send(server: Server, path: str, body: bytes) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}{PREFIX}/{path}",
        params={"access_token": server.token},
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
        timeout=600,
    )
    found: dict[str, Any] = response.json()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=16, help="requests in flight at once")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()

    photos = huge_photos(10)
    requests = worst_requests(photos)
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp))
        try:
            idle_rss, _ = rss_mb(server.process.pid)
            codes: dict[str, dict[Any, int]] = {}
            started = time.perf_counter()
            with ThreadPoolExecutor(args.requests) as pool:
                for _ in range(args.rounds):
                    jobs = [requests[i % len(requests)] for i in range(args.requests)]
                    for (path, _), answer in zip(
                        jobs, pool.map(lambda job: send(server, *job), jobs), strict=True
                    ):
                        tally = codes.setdefault(path, {})
                        code = answer.get("error_code", "ok")
                        tally[code] = tally.get(code, 0) + 1
            seconds = time.perf_counter() - started
            end_rss, peak_rss = rss_mb(server.process.pid)
        finally:
            server.stop()

    sizes = ", ".join(f"{path} {len(body) / 1e6:.1f} MB" for path, body in requests)
    lines = [
        f"Measured {machine()}: `python -m bench.memory --requests {args.requests} --rounds {args.rounds}`, "
        f"default settings (1 inference worker on 2 cores). Request bodies: {sizes}; every photo is "
        f"{SIDE} x {SIDE} px ({SIDE * SIDE / 1e6:.1f} MP, about {len(photos[0]) / 1e6:.1f} MB of base64, "
        "one face).",
        "",
        "| server RSS idle (models loaded) | peak (VmHWM) | after | requests | answers | wall time |",
        "|---|---|---|---|---|---|",
        f"| {idle_rss:.0f} MiB | {peak_rss:.0f} MiB | {end_rss:.0f} MiB | {args.requests} at once x "
        f"{args.rounds} rounds | {'; '.join(f'{p}: {c}' for p, c in codes.items())} | {seconds:.0f} s |",
    ]
    print("\n".join(lines))
    if args.write_docs:
        write_section(DOCS, "memory", lines)


if __name__ == "__main__":
    main()
