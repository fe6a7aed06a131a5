"""Daily and total limits hold exactly under a concurrent burst: two real `renlian serve` nodes on one
real PostgreSQL database, and one node on SQLite. Each burst sends three times the limit, spread over
the nodes; exactly the limit is served, the rest refused with Baidu's code, and once the nodes have
flushed, the stored count is what was served (every unused share of a lease came back)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psycopg
import pytest

from renlian.errors import ErrorCode
from tests.conftest import Server, start_server
from tests.postgres_cluster import Cluster

LIMIT = 20
GETLIST = "/rest/2.0/face/v3/faceset/group/getlist"


def apps(env: dict[str, str], data_dir: Path, *args: str) -> str:
    """`renlian apps ...`, on the database that `env` names (the fleet's) or in `data_dir`."""
    return subprocess.run(
        [sys.executable, "-m", "renlian.cli", "apps", *args, "--data-dir", str(data_dir)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    ).stdout


def burst(nodes: list[Server], app: dict[str, str]) -> Counter[int]:
    """Three times LIMIT requests of one app, twelve at a time, alternating between `nodes`."""
    tokens = [node.token_for(app) for node in nodes]

    def call(turn: int) -> int:
        node, token = nodes[turn % len(nodes)], tokens[turn % len(nodes)]
        response = httpx.post(
            node.base_url + GETLIST, params={"access_token": token}, json={"start": 0}, timeout=60
        )
        assert response.status_code == 200, response.text
        return int(response.json()["error_code"])

    with ThreadPoolExecutor(12) as pool:
        return Counter(pool.map(call, range(3 * LIMIT)))


def eventually_equal(read: Callable[[], int], expected: int) -> None:
    deadline = time.monotonic() + 10
    while read() != expected:
        assert time.monotonic() < deadline, f"stored {read()}, expected {expected}"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def fleet(
    postgres_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, str], Path, list[Server]]]:
    root = tmp_path_factory.mktemp("fleet_quotas")
    env = {
        "RENLIAN_DATABASE_URL": postgres_cluster.new_database(),
        "RENLIAN_INFERENCE_WORKERS": "1",
        "RENLIAN_THREADS_PER_WORKER": "1",
    }
    owner = json.loads(apps(env, root / "cli", "create", "owner"))
    nodes: list[Server] = []
    try:
        for name in ("a", "b"):
            (root / name).mkdir()
            nodes.append(start_server(root / name, extra_env=env, app=owner))
        yield env, root / "cli", nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.mark.parametrize(
    ("option", "refused"), [("--total", ErrorCode.TOTAL_LIMIT), ("--daily", ErrorCode.DAILY_LIMIT)]
)
def test_two_nodes_serve_exactly_the_limit(
    fleet: tuple[dict[str, str], Path, list[Server]], option: str, refused: ErrorCode
) -> None:
    env, cli_dir, nodes = fleet
    app = json.loads(apps(env, cli_dir, "create", option.strip("-")))
    apps(env, cli_dir, "set", app["app_id"], option, str(LIMIT))
    assert burst(nodes, app) == {0: LIMIT, refused.code: 2 * LIMIT}

    def stored() -> int:
        with psycopg.connect(env["RENLIAN_DATABASE_URL"]) as db:
            row = db.execute("SELECT SUM(count) FROM usage WHERE app_id = %s", (app["app_id"],)).fetchone()
            return int(row[0]) if row else 0

    eventually_equal(stored, LIMIT)


def test_one_sqlite_node_serves_exactly_the_limit(tmp_path: Path) -> None:
    node = start_server(tmp_path)
    try:
        apps({}, node.data_dir, "set", node.app["app_id"], "--total", str(LIMIT))
        assert burst([node], node.app) == {0: LIMIT, ErrorCode.TOTAL_LIMIT.code: 2 * LIMIT}

        def stored() -> int:
            with sqlite3.connect(node.data_dir / "renlian.sqlite3") as db:
                (count,) = db.execute(
                    "SELECT COALESCE(SUM(count), 0) FROM usage WHERE app_id = ?", (node.app["app_id"],)
                ).fetchone()
                return int(count)

        eventually_equal(stored, LIMIT)
    finally:
        node.stop()
