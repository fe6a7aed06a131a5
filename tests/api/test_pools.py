"""Blocking work runs in a pool per kind (api/pools.py): image URL downloads that hang fill only the
download pool, and logins and library reads are answered meanwhile, on a real server."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, start_server

V3 = "/rest/2.0/face/v3"
FETCH_THREADS = 2
# More than the download pool's threads, and more than the 32 threads asyncio's default executor has
# at most: enough to fill any one pool that downloads would share with logins and reads.
DOWNLOADS = 36
# A bound on responsiveness, not a benchmark: unblocked, these answer in milliseconds; stuck behind
# the downloads, never until they are released.
PROMPT_SECONDS = 3.0


class _PhotoServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = DOWNLOADS


def _hanging_photo_server(release: threading.Event, arrived: list[str]) -> _PhotoServer:
    """A photo server that holds every download open until `release` is set, then answers 404."""

    class Hanging(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            arrived.append(self.path)
            release.wait(60)
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    web = _PhotoServer(("127.0.0.1", 0), Hanging)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    return web


def _in_flight(server: Server) -> float:
    metrics = httpx.get(server.base_url + "/metrics", timeout=PROMPT_SECONDS).text
    line = next(line for line in metrics.splitlines() if line.startswith("renlian_requests_in_flight "))
    return float(line.split()[1])


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.05)


def _prompt(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = httpx.request(method, url, timeout=PROMPT_SECONDS, **kwargs)
    except httpx.TimeoutException:
        pytest.fail(f"{url} did not answer within {PROMPT_SECONDS} s while the downloads hang")
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_hanging_downloads_leave_logins_and_reads_answered(tmp_path: Path) -> None:
    release = threading.Event()
    arrived: list[str] = []
    web = _hanging_photo_server(release, arrived)
    photos = f"http://127.0.0.1:{web.server_port}/photos/"
    server = start_server(
        tmp_path,
        {
            "RENLIAN_IMAGE_URL_ALLOW": photos,
            "RENLIAN_IMAGE_URL_TIMEOUT_SECONDS": "60",
            "RENLIAN_FETCH_THREADS": str(FETCH_THREADS),
        },
    )
    v3 = server.base_url + V3

    def detect(index: int) -> int:
        body = {"image": f"{photos}{index}.jpg", "image_type": "URL"}
        response = httpx.post(f"{v3}/detect", params={"access_token": server.token}, json=body, timeout=120)
        return int(response.json()["error_code"])

    try:
        added = _prompt(
            "POST",
            f"{v3}/faceset/group/add",
            params={"access_token": server.token},
            json={"group_id": "kept"},
        )
        assert added["error_code"] == 0, added
        with ThreadPoolExecutor(DOWNLOADS) as clients:
            try:
                detects = [clients.submit(detect, index) for index in range(DOWNLOADS)]
                # Every detect is in the server (the scrape itself is one more request in flight),
                # and the download pool's threads are all held by the photo server.
                _wait_for(lambda: _in_flight(server) >= DOWNLOADS + 1, "every detect in flight")
                _wait_for(lambda: len(arrived) >= FETCH_THREADS, "the download pool full")

                credentials = {"client_id": server.app["api_key"], "client_secret": server.app["secret_key"]}
                params = {"grant_type": "client_credentials", **credentials}
                token = _prompt("GET", server.base_url + "/oauth/2.0/token", params=params)["access_token"]
                listing = _prompt(
                    "POST", f"{v3}/faceset/group/getlist", params={"access_token": token}, json={}
                )
                assert listing["error_code"] == 0 and "kept" in listing["result"]["group_id_list"], listing
                assert not any(future.done() for future in detects), "the downloads stopped hanging early"
            finally:
                release.set()
            # Released, each download gets the photo server's 404: the image URL error.
            assert [future.result() for future in detects] == [222204] * DOWNLOADS
    finally:
        release.set()
        server.stop()
        web.shutdown()
