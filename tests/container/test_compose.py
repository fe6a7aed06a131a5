"""renlian as containers, built from this repository and run with podman and podman-compose.

The base image is made from Debian's packages (no container registry is reachable here) under the
public image's name, so the Containerfiles are the ones a user builds. Then:

- compose.yaml: one node on its SQLite volume. An app made with `renlian apps create` inside the
  container; a detect and an enrol+search through Baidu's Python SDK from outside; a stop (SIGTERM,
  exit 0), the container removed and made again on the same volume, and the user still found.
- compose.fleet.yaml: PostgreSQL, two nodes and HAProxy. A user enrolled through node 1 is found
  through node 2 and through the balancer; the database password is in no image and no log.

Each step's time is printed (pytest -s shows it); docs/container.md has the figures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.container.engine import (
    BASE_IMAGE,
    IMAGES,
    RENLIAN_IMAGE,
    ROOT,
    Podman,
    build,
    check_runs,
    ensure_base_image,
    ensure_packages,
    free_port,
    unavailable,
    wait_healthy,
)

SDK_4_16_13 = Path(sys.prefix) / "baidu-aip-4.16.13"
SDK_CALLS = Path(__file__).parent / "sdk_calls.py"
PHOTO = ROOT / "tests/data/astronaut.jpg"
TIMINGS: dict[str, float] = {}


def timed(name: str, start: float) -> float:
    TIMINGS[name] = round(time.monotonic() - start, 2)
    print(f"[container] {name}: {TIMINGS[name]} s", flush=True)
    return TIMINGS[name]


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """The tools, the base image and the three images, built from the working tree."""
    if sys.platform != "linux":
        unavailable("podman needs Linux")
    if importlib.util.find_spec("podman_compose") is None:
        unavailable("podman-compose is not in the venv (scripts/test installs it)")
    start = time.monotonic()
    ensure_packages()
    timed("tools (apt-get where missing)", start)
    engine = Podman(tmp_path_factory.mktemp("podman"))
    start = time.monotonic()
    how = ensure_base_image(engine)
    timed(f"base image {BASE_IMAGE} ({how})", start)
    check_runs(engine)
    for image, context, containerfile in IMAGES:
        start = time.monotonic()
        build(engine, image, context, containerfile)
        timed(f"build {image}", start)
    size = int(engine.run("image", "inspect", "--format", "{{.Size}}", RENLIAN_IMAGE).stdout)
    print(f"[container] {RENLIAN_IMAGE}: {size / 1e6:.0f} MB", flush=True)
    yield engine
    print(f"[container] timings: {json.dumps(TIMINGS)}", flush=True)


def sdk(action: str, app: dict[str, str], base_url: str, group: str, user: str) -> dict[str, Any]:
    """Baidu's SDK 4.16.13 in a process of its own (the venv holds an older one)."""
    assert (SDK_4_16_13 / "aip").is_dir(), "the test command installs baidu-aip 4.16.13 beside the venv"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SDK_4_16_13), str(ROOT)])}
    args = [action, app["app_id"], app["api_key"], app["secret_key"], base_url, str(PHOTO), group, user]
    result = subprocess.run(
        [sys.executable, str(SDK_CALLS), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answers: dict[str, Any] = json.loads(result.stdout)
    return answers


def found(answers: dict[str, Any], user: str) -> None:
    search = answers["search"]
    assert search["error_code"] == 0, search
    best = search["result"]["user_list"][0]
    assert best["user_id"] == user and best["score"] > 80, search


def enrolled(answers: dict[str, Any], user: str) -> None:
    detect = answers["detect"]
    assert detect["error_code"] == 0 and detect["result"]["face_num"] == 1, detect
    assert answers["addUser"]["error_code"] == 0, answers["addUser"]
    found(answers, user)


def create_app(podman: Podman, container: str, name: str) -> dict[str, str]:
    """`renlian apps create` inside the container, as its docs tell an operator to."""
    created: dict[str, str] = json.loads(
        podman.run("exec", container, "renlian", "apps", "create", name).stdout
    )
    return created


def down(podman: Podman, project: str, file: str, env: dict[str, str]) -> None:
    """Containers, volumes and the project's pod removed; the images stay (they are the cache).
    Never raises: it runs in a `finally`, where it must not hide the test's own failure."""
    podman.compose(project, file, "down", "--volumes", env=env, check=False)
    # Whatever compose left behind (a failed `up`), found by the project's label.
    label = f"label=io.podman.compose.project={project}"
    ids = podman.run("ps", "-aq", "--filter", label, check=False).stdout.split()
    if ids:
        podman.run("rm", "-f", "-t", "0", *ids, check=False)
    volumes = podman.run("volume", "ls", "-q", "--filter", label, check=False).stdout.split()
    if volumes:
        podman.run("volume", "rm", "-f", *volumes, check=False)
    podman.run("pod", "rm", "-f", f"pod_{project}", check=False)


def test_single_node_sqlite(podman: Podman) -> None:
    project = f"renlian-test-{os.getpid()}"
    port = free_port()
    env = {"RENLIAN_HOST": "127.0.0.1", "RENLIAN_PORT": str(port)}
    base_url = f"http://127.0.0.1:{port}"
    container = f"{project}_renlian_1"
    try:
        start = time.monotonic()
        podman.compose(project, "compose.yaml", "up", "-d", "--no-build", env=env)
        wait_healthy(f"{base_url}/healthz", 120)
        timed("single node: compose up to /healthz 200 (cold, empty volume)", start)
        health = podman.health(container)
        assert health.returncode == 0, f"HEALTHCHECK: {health.stdout}{health.stderr}"

        config = podman.inspect("container", container)["Config"]
        assert config["User"] == "renlian"
        assert podman.run("exec", container, "id", "-u").stdout.strip() != "0"
        data = podman.run("exec", container, "stat", "-c", "%U %a", "/var/lib/renlian").stdout.split()
        assert data == ["renlian", "700"], data

        doctor = podman.run("exec", container, "renlian", "doctor", check=False)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr

        app = create_app(podman, container, "container-test")
        start = time.monotonic()
        enrolled(sdk("enrol", app, base_url, "crew", "collins"), "collins")
        timed("single node: SDK detect, enrol and search", start)

        # SIGTERM: renlian finishes and exits 0, well before compose's stop_grace_period.
        start = time.monotonic()
        podman.compose(project, "compose.yaml", "stop", env=env)
        stopped = timed("single node: compose stop (SIGTERM)", start)
        state = podman.inspect("container", container)["State"]
        assert state["ExitCode"] == 0 and stopped < 30, state

        # A new container on the same volume finds the app and the user.
        podman.compose(project, "compose.yaml", "down", env=env)
        start = time.monotonic()
        podman.compose(project, "compose.yaml", "up", "-d", "--no-build", env=env)
        wait_healthy(f"{base_url}/healthz", 120)
        timed("single node: compose up to /healthz 200 (new container, same volume)", start)
        found(sdk("search", app, base_url, "crew", "collins"), "collins")
    finally:
        down(podman, project, "compose.yaml", env)


def test_fleet_on_postgresql(podman: Podman) -> None:
    project = f"renlian-fleet-test-{os.getpid()}"
    password = secrets.token_hex(16)
    ports = {
        name: free_port()
        for name in ("RENLIAN_PORT", "RENLIAN_NODE1_PORT", "RENLIAN_NODE2_PORT", "RENLIAN_DB_PORT")
    }
    env = {
        "RENLIAN_HOST": "127.0.0.1",
        "RENLIAN_DB_PASSWORD": password,
        **{k: str(v) for k, v in ports.items()},
    }
    balancer = f"http://127.0.0.1:{ports['RENLIAN_PORT']}"
    node1 = f"http://127.0.0.1:{ports['RENLIAN_NODE1_PORT']}"
    node2 = f"http://127.0.0.1:{ports['RENLIAN_NODE2_PORT']}"
    try:
        start = time.monotonic()
        podman.compose(project, "compose.fleet.yaml", "up", "-d", "--no-build", env=env)
        for url in (node1, node2, balancer):
            wait_healthy(f"{url}/healthz", 180)
        timed("fleet: compose up to both nodes and the balancer healthy (cold)", start)
        # podman 4.3 does not wait for PostgreSQL's health before starting the nodes: a node that
        # found it not yet listening exited and was started again by its restart policy.
        restarts = {
            n: podman.inspect("container", f"{project}_{n}_1")["RestartCount"] for n in ("node1", "node2")
        }
        print(f"[container] fleet: node restarts while PostgreSQL started: {restarts}", flush=True)
        for service in ("postgres", "node1", "node2"):
            health = podman.health(f"{project}_{service}_1")
            assert health.returncode == 0, f"{service} HEALTHCHECK: {health.stdout}{health.stderr}"

        # The node's own check: models, data directory, and PostgreSQL reachable with its schema.
        doctor = podman.run("exec", f"{project}_node1_1", "renlian", "doctor", check=False)
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert "database postgresql://renlian:***@" in doctor.stdout and password not in doctor.stdout

        app = create_app(podman, f"{project}_node1_1", "fleet-test")
        enrolled(sdk("enrol", app, node1, "crew", "hopper"), "hopper")
        # Node 2 applies node 1's write from the change feed within milliseconds; a search that
        # lands in between is retried once, as docs/scale-out.md tells clients to.
        answers = sdk("search", app, node2, "crew", "hopper")
        if answers["search"]["error_code"] != 0 or not answers["search"]["result"]:
            time.sleep(1)
            answers = sdk("search", app, node2, "crew", "hopper")
        found(answers, "hopper")
        found(sdk("search", app, balancer, "crew", "hopper"), "hopper")

        # The password reached PostgreSQL and the nodes from the environment at `up`: no image
        # holds it, and no container logged it.
        for image, _, _ in IMAGES:
            assert password not in podman.run("image", "inspect", image).stdout, image
        for service in ("postgres", "node1", "node2", "balancer"):
            logs = podman.run("logs", f"{project}_{service}_1")
            assert password not in logs.stdout + logs.stderr, service
    finally:
        down(podman, project, "compose.fleet.yaml", env)
