"""Shared fixtures: the committed test photos, a loaded analyzer, and a real server in a subprocess."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from renlian.models.cache import ModelCache
from renlian.settings import Settings
from renlian.vision.analyzer import AnalyzerConfig, FaceAnalyzer, load_analyzer

DATA = Path(__file__).parent / "data"


def read(name: str) -> np.ndarray:
    image = cv2.imread(str(DATA / name))
    assert image is not None, name
    return image


def b64(image: np.ndarray, ext: str = ".jpg") -> str:
    ok, encoded = cv2.imencode(ext, image)
    assert ok
    return base64.b64encode(encoded.tobytes()).decode()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return read("astronaut.jpg")


@pytest.fixture(scope="session")
def hopper() -> np.ndarray:
    return read("grace_hopper.jpg")


@pytest.fixture(scope="session")
def analyzer() -> FaceAnalyzer:
    """The real models from the cache that `renlian models fetch` filled (the test command runs it)."""
    settings = Settings()
    config = AnalyzerConfig(
        recognizer=settings.recognizer,
        threads=1,
        detect_max_side=settings.detect_max_side,
        detect_score_threshold=settings.detect_score_threshold,
    )
    return load_analyzer(ModelCache(settings.model_cache()), config)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    def __init__(self, process: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
        self.process = process
        self.base_url = base_url
        self.log = log

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        return httpx.post(self.base_url + path, data=data, timeout=60, **kwargs)  # type: ignore[arg-type]

    def call(self, path: str, **fields: str) -> dict[str, Any]:
        response = self.post(path, fields)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Server:
    port = _free_port()
    log = tmp / "server.log"
    env = {
        **os.environ,
        "RENLIAN_PORT": str(port),
        "RENLIAN_DATA_DIR": str(tmp / "data"),
        **(extra_env or {}),
    }
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "renlian.cli", "serve"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited {process.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(base_url + "/healthz", timeout=2).status_code == 200:
                return Server(process, base_url, log)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.process.terminate()
    running.process.wait(timeout=30)
