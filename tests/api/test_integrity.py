"""The library over HTTP under racing writes, the event loop while the store is busy, group capacity."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from tests.conftest import Server, b64, start_server

PREFIX = "/rest/2.0/face/v2"
UIDS = ["r0", "r1", "r2"]
GROUPS = ["ga", "gb"]


def photos(astronaut: np.ndarray, hopper: np.ndarray) -> list[str]:
    """A few distinct photos of two people (distinct bytes, so appends are not 216616)."""
    found = []
    for image in (astronaut, hopper):
        for side in (200, 240, 280):
            found.append(b64(cv2.resize(image, (side, side))))
    return found


def store_faces(server: Server) -> dict[tuple[str, str], int]:
    with sqlite3.connect(server.data_dir / "renlian.sqlite3") as db:
        rows = db.execute("SELECT group_id, uid, COUNT(*) FROM faces GROUP BY group_id, uid").fetchall()
    return {(group, uid): count for group, uid, count in rows}


def verified_faces(server: Server, probe: str) -> dict[tuple[str, str], int]:
    """How many faces verify finds for each (group, uid): what the server's index holds."""
    found = {}
    for group in GROUPS:
        for uid in UIDS:
            body = server.call(f"{PREFIX}/verify", uid=uid, group_id=group, images=probe, top_num="100")
            if "error_code" in body:
                assert body["error_code"] == 216611, body
            else:
                found[(group, uid)] = body["result_num"]
    return found


def test_racing_writes_over_http_leave_index_store_and_restart_equal(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    server = start_server(tmp_path, {"RENLIAN_INFERENCE_WORKERS": "4", "RENLIAN_THREADS_PER_WORKER": "1"})
    images = photos(astronaut, hopper)
    failures: list[str] = []

    def client(seed: int) -> None:
        pick = random.Random(seed)
        with httpx.Client(base_url=server.base_url, timeout=120) as http:
            for _ in range(30):
                uid, group = pick.choice(UIDS), pick.choice(GROUPS)
                operation = pick.randrange(5)
                fields = {"uid": uid, "group_id": group}
                if operation == 0:
                    path = "faceset/user/add"
                    fields |= {"user_info": uid, "images": pick.choice(images)}
                elif operation == 1:
                    path = "faceset/user/add"
                    fields |= {"user_info": uid, "images": pick.choice(images), "action_type": "replace"}
                elif operation == 2:
                    path = "faceset/user/delete"
                elif operation == 3:
                    path = "faceset/group/adduser"
                    fields |= {"src_group_id": group, "group_id": next(g for g in GROUPS if g != group)}
                else:
                    path = "faceset/group/deleteuser"
                body = http.post(
                    f"{PREFIX}/{path}", data=fields, params={"access_token": server.token}
                ).json()
                if body.get("error_code") not in (None, 216611, 216616, 216100, 216619):
                    failures.append(f"{path} {fields}: {body}")

    try:
        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        in_store = store_faces(server)
        assert verified_faces(server, images[0]) == in_store
    finally:
        server.stop()
    restarted = start_server(tmp_path, app=server.app)
    try:
        assert verified_faces(restarted, images[0]) == in_store
    finally:
        restarted.stop()


def test_the_event_loop_never_waits_for_a_locked_store(tmp_path: Path, astronaut: np.ndarray) -> None:
    server = start_server(tmp_path, {"RENLIAN_DB_BUSY_TIMEOUT_SECONDS": "8"})
    image = b64(cv2.resize(astronaut, (200, 200)))
    try:
        # Another process's write (an import, a backup restore) holds the database for a while.
        holder = sqlite3.connect(server.data_dir / "renlian.sqlite3", isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        waiting = [
            threading.Thread(
                target=lambda: server.call(
                    f"{PREFIX}/faceset/user/add", uid="w", user_info="w", group_id="busy", images=image
                )
            ),
            # (A token no longer waits for the store: it is a MAC, and issuing one writes nothing.)
            threading.Thread(
                target=lambda: server.call("/rest/2.0/face/v3/faceset/group/add", group_id="other")
            ),
        ]
        for thread in waiting:
            thread.start()
        time.sleep(0.5)  # both are now waiting for the store
        slowest = 0.0
        for _ in range(10):
            started = time.monotonic()
            assert httpx.get(server.base_url + "/healthz", timeout=10).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
            time.sleep(0.1)
        # A blocked loop would hold /healthz until the lock goes, seconds from now.
        assert slowest < 1.0, slowest
        assert all(thread.is_alive() for thread in waiting), "the writes should still be waiting"
        holder.execute("ROLLBACK")
        holder.close()
        for thread in waiting:
            thread.join(timeout=30)
        assert server.call(f"{PREFIX}/faceset/user/get", uid="w")["result_num"] == 1
    finally:
        server.stop()


def test_adduser_honours_the_group_capacity(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    server = start_server(tmp_path, {"RENLIAN_MAX_GROUP_FACES": "2"})
    add = f"{PREFIX}/faceset/user/add"
    try:
        assert "error_code" not in server.call(
            add, uid="a", user_info="a", group_id="full", images=b64(astronaut)
        )
        assert "error_code" not in server.call(
            add, uid="b", user_info="b", group_id="full", images=b64(hopper)
        )
        assert "error_code" not in server.call(
            add, uid="c", user_info="c", group_id="other", images=b64(hopper)
        )
        copied = server.call(
            f"{PREFIX}/faceset/group/adduser", uid="c", src_group_id="other", group_id="full"
        )
        assert copied["error_code"] == 216617
        assert (
            server.call(add, uid="d", user_info="d", group_id="full", images=b64(astronaut))["error_code"]
            == 216617
        )
    finally:
        server.stop()
