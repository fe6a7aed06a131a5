"""A fleet: two real `renlian serve` processes on one real PostgreSQL database (docs/scale-out.md).

Tokens work on every node, a write on one node is searchable on the other, quotas count each request
once across nodes, and the faults: PostgreSQL restarted under load (216300 for requests in flight,
no acknowledged write lost, both indexes converge), and a node killed -9 and started again.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from renlian.errors import ErrorCode
from tests.conftest import Server, b64, start_server
from tests.postgres_cluster import Cluster

V3 = "/rest/2.0/face/v3"
V2 = "/rest/2.0/face/v2"


@dataclass
class Fleet:
    url: str
    env: dict[str, str]
    app: dict[str, str]
    nodes: list[Server]
    root: Path

    def start_node(self, name: str) -> Server:
        (self.root / name).mkdir()
        node = start_server(self.root / name, extra_env=self.env, app=self.app)
        self.nodes.append(node)
        return node

    def sql(self, query: str, *params: object) -> Any:
        with psycopg.connect(self.url) as connection:
            row = connection.execute(query, params).fetchone()
            return row[0] if row else None


def cli(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "renlian.cli", *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env={**os.environ, **env},
    )
    return result.stdout


@pytest.fixture(scope="module")
def fleet(postgres_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    url = postgres_cluster.new_database()
    root = tmp_path_factory.mktemp("fleet")
    env = {
        "RENLIAN_DATABASE_URL": url,
        "RENLIAN_INFERENCE_WORKERS": "1",
        "RENLIAN_THREADS_PER_WORKER": "1",
        # A request waits at most this long for a database connection: an outage longer than that
        # answers 216300 instead of waiting it out.
        "RENLIAN_DB_BUSY_TIMEOUT_SECONDS": "1",
    }
    app = json.loads(cli(env, "apps", "create", "fleet", "--data-dir", str(root / "cli")))
    running = Fleet(url, env, app, [], root)
    running.start_node("a")
    running.start_node("b")
    yield running
    for node in running.nodes:
        if node.process.poll() is None:
            node.stop()


def v3(node: Server, path: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    response = httpx.post(
        f"{node.base_url}{V3}/{path}", params={"access_token": token or node.token}, json=body, timeout=60
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def search(node: Server, image: str, group: str) -> list[str]:
    """The user ids a v3 search finds in `group` (none when the group has no users)."""
    answer = v3(
        node, "search", {"image": image, "image_type": "BASE64", "group_id_list": group, "max_user_num": 5}
    )
    if answer["error_code"] != 0:
        return []
    return [user["user_id"] for user in answer["result"]["user_list"]]


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the nodes did not converge"
        time.sleep(0.02)


def index_faces(node: Server, app_id: str) -> int:
    text = httpx.get(node.base_url + "/metrics", timeout=10).text
    found = re.search(rf'^renlian_index_faces{{app_id="{app_id}"}} (\S+)$', text, re.M)
    return int(float(found.group(1))) if found else 0


def test_a_token_from_one_node_works_on_the_other_and_writes_reach_both(
    fleet: Fleet, hopper: np.ndarray
) -> None:
    a, b = fleet.nodes[:2]
    token = a.token_for(fleet.app)  # issued by a, used on b
    photo = b64(hopper)
    added = v3(
        a, "faceset/user/add", {"image": photo, "image_type": "BASE64", "group_id": "both", "user_id": "gh"}
    )
    assert added["error_code"] == 0, added
    # On the writing node at once; on the other one within the promise (bench/fleet.py times it).
    assert search(a, photo, "both") == ["gh"]
    eventually(lambda: search(b, photo, "both") == ["gh"])
    deleted = v3(b, "faceset/user/delete", {"group_id": "both", "user_id": "gh"}, token=token)
    assert deleted["error_code"] == 0, deleted
    assert search(b, photo, "both") == []
    eventually(lambda: search(a, photo, "both") == [])
    scrape = httpx.get(a.base_url + "/metrics", timeout=10).text
    lag = re.search(r"^renlian_index_sync_lag_seconds (\S+)$", scrape, re.M)
    applied = re.search(r"^renlian_index_sync_changes_total (\S+)$", scrape, re.M)
    assert lag and 0 <= float(lag.group(1)) < 1, scrape
    assert applied and float(applied.group(1)) >= 2  # its own add, and b's delete


def test_daily_quota_counts_each_request_once_across_nodes(fleet: Fleet) -> None:
    a, b = fleet.nodes[:2]
    app = json.loads(cli(fleet.env, "apps", "create", "quota", "--data-dir", str(fleet.root / "cli")))
    tokens = {node.base_url: node.token_for(app) for node in (a, b)}

    def call(node: Server) -> int:
        answer = v3(node, "faceset/group/getlist", {"start": 0, "length": 10}, token=tokens[node.base_url])
        return int(answer["error_code"])

    def counted() -> Any:
        return fleet.sql("SELECT SUM(count) FROM usage WHERE app_id = %s", app["app_id"])

    for turn in range(10):
        assert call((a, b)[turn % 2]) == 0
    eventually(lambda: counted() == 10)
    cli(fleet.env, "apps", "set", app["app_id"], "--daily", "14", "--data-dir", str(fleet.root / "cli"))
    for turn in range(4):
        assert call((a, b)[turn % 2]) == 0
    eventually(lambda: counted() == 14)
    time.sleep(1.5)  # every node has flushed, and reads the sum at each admission
    assert [call(a), call(b)] == [ErrorCode.DAILY_LIMIT.code] * 2
    assert counted() == 14


def test_postgresql_restarted_under_load_loses_no_acknowledged_write(
    fleet: Fleet, postgres_cluster: Cluster, hopper: np.ndarray, astronaut: np.ndarray
) -> None:
    a, b = fleet.nodes[:2]
    photos = [b64(hopper), b64(astronaut)]
    answers: list[tuple[str, int, int]] = []  # (uid, HTTP status, error_code)
    stop = threading.Event()

    def client(number: int) -> None:
        serial = 0
        while not stop.is_set():
            uid = f"load{number}_{serial}"
            node = (a, b)[serial % 2]
            try:
                response = node.post(
                    f"{V2}/faceset/user/add",
                    {"uid": uid, "user_info": uid, "group_id": "load", "image": photos[number % 2]},
                )
            except httpx.TransportError:
                answers.append((uid, 0, -1))
            else:
                answers.append((uid, response.status_code, response.json().get("error_code", 0)))
            serial += 1

    clients = [threading.Thread(target=client, args=(number,)) for number in range(3)]
    for thread in clients:
        thread.start()
    time.sleep(3)
    postgres_cluster.stop_server()
    time.sleep(2.5)
    postgres_cluster.start_server()
    time.sleep(3)
    stop.set()
    for thread in clients:
        thread.join()

    assert {status for _, status, _ in answers} == {200}, "every request answered in Baidu's envelope"
    codes = [code for _, _, code in answers]
    assert set(codes) <= {0, ErrorCode.DB_ERROR.code}, set(codes)
    assert codes.count(ErrorCode.DB_ERROR.code) >= 1, "some requests were in flight while it was down"
    assert codes[-6:].count(0) >= 3, "the nodes reconnected by themselves"
    acknowledged = {uid for uid, _, code in answers if code == 0}
    with psycopg.connect(fleet.url) as connection:
        stored = {uid for (uid,) in connection.execute("SELECT uid FROM users WHERE group_id = 'load'")}
        (faces,) = connection.execute(
            "SELECT COUNT(*) FROM faces WHERE app_id = %s", (fleet.app["app_id"],)
        ).fetchone() or (0,)
    assert acknowledged <= stored
    # Both indexes converge on the database: the same face count, and every acknowledged user found.
    eventually(lambda: index_faces(a, fleet.app["app_id"]) == index_faces(b, fleet.app["app_id"]) == faces)
    for uid in sorted(acknowledged)[:: max(1, len(acknowledged) // 8)]:
        for node in (a, b):
            answer = node.call(f"{V2}/verify", uid=uid, group_id="load", image=photos[int(uid[4]) % 2])
            assert answer["result"][0] > 80, (uid, node.base_url, answer)
    # Restarted again while idle: the connections that sat in the pools through it are checked
    # before use, so reads (every request reads its token and app) answer without a failed try.
    postgres_cluster.stop_server()
    postgres_cluster.start_server()
    reads = [v3(node, "faceset/group/getlist", {"start": 0, "length": 5}) for node in (a, b) * 10]
    assert [answer["error_code"] for answer in reads] == [0] * 20, reads


def test_two_nodes_racing_on_the_same_users_end_with_identical_indexes(
    fleet: Fleet, hopper: np.ndarray, astronaut: np.ndarray
) -> None:
    a, b = fleet.nodes[:2]
    photos = [b64(hopper), b64(astronaut)]
    uids = ["r0", "r1", "r2"]
    # What a racing write may meet because of another node's write: never anything else.
    expected = {0, ErrorCode.USER_NOT_EXIST.code, ErrorCode.IMAGE_EXISTED.code}
    seen: list[int] = []

    def client(node: Server, seed: int) -> None:
        pick = random.Random(seed)
        for _ in range(25):
            uid, photo = pick.choice(uids), pick.choice(photos)
            operation = pick.choice(["add", "add", "update", "delete"])
            fields = {"uid": uid, "group_id": "race"}
            if operation != "delete":  # add appends a photo (216616 if the user has it); update replaces
                fields.update(user_info=uid, image=photo)
            response = node.post(f"{V2}/faceset/user/{operation}", fields)
            seen.append(response.json().get("error_code", 0))

    clients = [threading.Thread(target=client, args=(node, seed)) for seed, node in enumerate([a, b, a, b])]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    assert set(seen) <= expected, set(seen)
    faces = fleet.sql("SELECT COUNT(*) FROM faces WHERE app_id = %s", fleet.app["app_id"])
    eventually(lambda: index_faces(a, fleet.app["app_id"]) == index_faces(b, fleet.app["app_id"]) == faces)
    for uid in uids:
        stored = fleet.sql("SELECT COUNT(*) FROM faces WHERE group_id = 'race' AND uid = %s", uid)
        # verify scores every face of the user: equal lists mean the same faces in both indexes.
        fields = {"uid": uid, "group_id": "race", "image": photos[0], "top_num": "10"}
        answers = [node.post(f"{V2}/verify", fields).json() for node in (a, b)]
        assert answers[0].get("result") == answers[1].get("result"), answers
        assert answers[0].get("result_num", 0) == stored, (uid, stored, answers)


def test_a_node_killed_and_started_again_loads_its_index_and_serves(
    fleet: Fleet, astronaut: np.ndarray
) -> None:
    a, b = fleet.nodes[:2]
    b.process.kill()  # SIGKILL: no shutdown, no flush
    b.process.wait(timeout=30)
    photo = b64(astronaut)
    added = v3(
        a, "faceset/user/add", {"image": photo, "image_type": "BASE64", "group_id": "k9", "user_id": "eileen"}
    )
    assert added["error_code"] == 0, added
    again = fleet.start_node("b-again")
    faces = fleet.sql("SELECT COUNT(*) FROM faces WHERE app_id = %s", fleet.app["app_id"])
    assert index_faces(again, fleet.app["app_id"]) == faces
    assert search(again, photo, "k9") == ["eileen"]
