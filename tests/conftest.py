"""Shared fixtures: the committed test photos, a loaded analyzer, and a real server in a subprocess."""

from __future__ import annotations

import base64
import json
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
from renlian.vision.analyzer import FaceAnalyzer, load_analyzer
from tests.postgres_cluster import Cluster, binaries

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
    return load_analyzer(ModelCache(settings.model_cache()), settings.analyzer_config(threads=1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def create_app(data_dir: Path, name: str = "tests", *options: str) -> dict[str, str]:
    """An app made the way users make one: `renlian apps create` (works while a server runs)."""
    result = subprocess.run(
        [sys.executable, "-m", "renlian.cli", "apps", "create", name, "--data-dir", str(data_dir), *options],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    created: dict[str, str] = json.loads(result.stdout)
    return created


def token_for(base_url: str, app: dict[str, str]) -> str:
    """An access token for `app` from the server at `base_url`, as a client gets one."""
    response = httpx.get(
        base_url + "/oauth/2.0/token",
        params={
            "grant_type": "client_credentials",
            "client_id": app["api_key"],
            "client_secret": app["secret_key"],
        },
    )
    token: str = response.json()["access_token"]
    return token


class Server:
    """A running `renlian serve` and one app's access token, which every call carries."""

    def __init__(
        self, process: subprocess.Popen[bytes], base_url: str, data_dir: Path, app: dict[str, str] | None
    ) -> None:
        self.process = process
        self.base_url = base_url
        self.data_dir = data_dir
        self.app = app or create_app(data_dir)
        self.token = self.token_for(self.app)

    def token_for(self, app: dict[str, str]) -> str:
        return token_for(self.base_url, app)

    def post(
        self, path: str, data: dict[str, str] | None = None, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        params = {"access_token": token or self.token, **kwargs.pop("params", {})}
        return httpx.post(self.base_url + path, data=data, params=params, timeout=60, **kwargs)

    def get(self, path: str, params: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(
            self.base_url + path, params={"access_token": self.token, **(params or {})}, timeout=60
        )

    def call(self, path: str, token: str | None = None, **fields: str) -> dict[str, Any]:
        response = self.post(path, fields, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def start_server(
    tmp: Path, extra_env: dict[str, str] | None = None, app: dict[str, str] | None = None
) -> Server:
    """`renlian serve` on a free port with its data under `tmp`, acting for `app` (a new one if None)."""
    port = _free_port()
    log = tmp / "server.log"
    data_dir = tmp / "data"
    env = {**os.environ, "RENLIAN_PORT": str(port), "RENLIAN_DATA_DIR": str(data_dir), **(extra_env or {})}
    with log.open("ab") as sink:
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
                return Server(process, base_url, data_dir, app)
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"server did not become healthy:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """One throwaway PostgreSQL server for the session (scripts/test installs it where missing)."""
    bin_dir = binaries()
    if bin_dir is None:
        message = "PostgreSQL's initdb is not installed (scripts/test installs Debian's postgresql)"
        # In CI the test command has installed it: a missing server there is a failure, not a skip.
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    cluster = Cluster(bin_dir)
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url(postgres_cluster: Cluster) -> str:
    """An empty database of its own for each test."""
    return postgres_cluster.new_database()
