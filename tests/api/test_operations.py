"""Running it like a product: /metrics, the request log, graceful shutdown, `renlian doctor`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np

from tests.conftest import Server, b64, start_server

V2 = "/rest/2.0/face/v2"
V3 = "/rest/2.0/face/v3"


def test_metrics_count_requests_without_secrets(server: Server, astronaut: np.ndarray) -> None:
    image = b64(cv2.resize(astronaut, (200, 200)))
    server.call(f"{V2}/faceset/user/add", uid="metric_uid", user_info="m", group_id="metrics", images=image)
    server.call(f"{V2}/detect", image="%%%")
    httpx.post(server.base_url + f"{V3}/detect", params={"access_token": server.token}, json={"image": image})
    httpx.post(server.base_url + f"{V2}/detect", params={"access_token": "never-issued"})
    text = httpx.get(server.base_url + "/metrics").text
    samples = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if not line.startswith("#")
    }
    assert samples[f'renlian_requests_total{{endpoint="{V2}/detect",error_code="216200",protocol="v2"}}'] >= 1
    assert samples[f'renlian_requests_total{{endpoint="{V3}/detect",error_code="222001",protocol="v3"}}'] >= 1
    assert samples[f'renlian_requests_total{{endpoint="{V2}/detect",error_code="110",protocol="v2"}}'] >= 1
    assert samples[f'renlian_request_seconds_count{{endpoint="{V2}/faceset/user/add"}}'] >= 1
    assert samples['renlian_inference_seconds_count{model="yunet"}'] >= 1
    assert samples[f'renlian_index_faces{{app_id="{server.app["app_id"]}"}}'] >= 1
    assert samples["renlian_requests_in_flight"] >= 0
    assert any(name.startswith("renlian_build_info{") for name in samples)
    # Counts only: no uid, token or key anywhere in the exposition.
    for secret in (
        "metric_uid",
        server.token,
        server.app["api_key"],
        server.app["secret_key"],
        "never-issued",
    ):
        assert secret not in text


def test_quota_refusals_are_counted(tmp_path: Path) -> None:
    running = start_server(tmp_path, {"RENLIAN_MAX_CONCURRENT_REQUESTS": "1"})
    try:
        subprocess.run(
            [
                *(sys.executable, "-m", "renlian.cli", "apps", "set", running.app["app_id"]),
                *("--qps", "1", "--data-dir", str(running.data_dir)),
            ],
            check=True,
            capture_output=True,
        )
        codes = [running.call(f"{V2}/faceset/group/getlist").get("error_code") for _ in range(3)]
        assert 18 in codes
        text = httpx.get(running.base_url + "/metrics").text
        assert 'renlian_quota_refusals_total{error_code="18"}' in text
    finally:
        running.stop()


def log_lines(data_dir: Path) -> list[str]:
    return (data_dir.parent / "server.log").read_text().splitlines()


def test_the_request_log_in_json_never_holds_secrets(tmp_path: Path, astronaut: np.ndarray) -> None:
    running = start_server(tmp_path, {"RENLIAN_LOG_FORMAT": "json"})
    image = b64(cv2.resize(astronaut, (200, 200)))
    try:
        answer = running.call(
            f"{V2}/faceset/user/add", uid="logged_uid", user_info="x", group_id="logs", images=image
        )
        failed = running.call(f"{V2}/detect", image="%%%")
    finally:
        running.stop()
    entries = [json.loads(line) for line in log_lines(running.data_dir) if line.startswith("{")]
    requests = {entry["log_id"]: entry for entry in entries if entry["logger"] == "renlian.access"}
    added = requests[answer["log_id"]]
    assert added["app_id"] == running.app["app_id"] and added["error_code"] == 0
    assert added["endpoint"] == f"{V2}/faceset/user/add" and added["ms"] > 0
    assert requests[failed["log_id"]]["error_code"] == 216200
    whole = "\n".join(log_lines(running.data_dir))
    for secret in (running.token, running.app["secret_key"], "logged_uid", image[:40]):
        assert secret not in whole


def test_text_request_log_lines(server: Server) -> None:
    answer = server.call(f"{V2}/faceset/group/getlist")
    wanted = f"log_id={answer['log_id']} "
    # The line is written once the answer has gone out: give it a moment.
    for _ in range(50):
        found = [line for line in log_lines(server.data_dir) if wanted in line]
        if found:
            break
        threading.Event().wait(0.1)
    line = found[0]
    assert f"app_id={server.app['app_id']}" in line and "error_code=0" in line and "ms=" in line


def test_sigterm_finishes_accepted_requests_and_loses_no_acknowledged_write(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    running = start_server(tmp_path)
    images = [
        b64(cv2.resize(face, (side, side))) for face in (astronaut, hopper) for side in (180, 200, 220, 240)
    ]
    outcomes: list[tuple[str, Any]] = []
    lock = threading.Lock()

    def enrol(worker: int) -> None:
        for i in range(30):
            uid = f"w{worker}_{i}"
            try:
                response = httpx.post(
                    running.base_url + f"{V2}/faceset/user/add",
                    params={"access_token": running.token},
                    data={
                        "uid": uid,
                        "user_info": uid,
                        "group_id": "term",
                        "images": images[(worker + i) % len(images)],
                    },
                    timeout=60,
                )
            except httpx.TransportError:
                return  # refused: the server no longer accepts; nothing was acknowledged
            with lock:
                outcomes.append((uid, response.json()))  # any answer must be whole JSON

    threads = [threading.Thread(target=enrol, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    while len(outcomes) < 6:
        threading.Event().wait(0.05)
    running.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(timeout=120)
    assert running.process.wait(timeout=60) == 0
    acknowledged = {uid for uid, body in outcomes if "error_code" not in body}
    assert acknowledged and all(set(body) >= {"log_id"} for _, body in outcomes)
    with sqlite3.connect(running.data_dir / "renlian.sqlite3") as db:
        stored = {uid for (uid,) in db.execute("SELECT uid FROM users WHERE group_id = 'term'")}
    assert acknowledged <= stored


def test_doctor(tmp_path: Path) -> None:
    def doctor(data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "renlian.cli", "doctor", "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            timeout=120,
        )

    missing = doctor(tmp_path / "none")
    assert missing.returncode == 1 and "does not exist" in missing.stdout
    data = tmp_path / "data"
    subprocess.run(
        [sys.executable, "-m", "renlian.cli", "apps", "create", "doc", "--data-dir", str(data)],
        check=True,
        capture_output=True,
    )
    healthy = doctor(data)
    assert healthy.returncode == 0, healthy.stdout
    assert "problem" not in healthy.stdout and "schema" in healthy.stdout
    oversubscribed = doctor(data, RENLIAN_INFERENCE_WORKERS="8", RENLIAN_THREADS_PER_WORKER="4")
    assert oversubscribed.returncode == 1 and "oversubscribe" in oversubscribed.stdout
    models = doctor(data, RENLIAN_MODEL_DIR=str(tmp_path / "empty-cache"))
    assert models.returncode == 1 and "renlian models fetch" in models.stdout
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").iterdir())
    (data / "renlian.sqlite3").write_bytes(b"not a database" * 100)
    broken = doctor(data)
    assert broken.returncode == 1 and "cannot be read" in broken.stdout
