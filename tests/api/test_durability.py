"""Nothing acknowledged is lost, nothing half-written is kept, and concurrent writers stay consistent."""

from __future__ import annotations

import signal
import sqlite3
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from tests.conftest import b64, start_server

ADD = "/rest/2.0/face/v2/faceset/user/add"
DELETE = "/rest/2.0/face/v2/faceset/user/delete"
GET = "/rest/2.0/face/v2/faceset/user/get"
USERS = "/rest/2.0/face/v2/faceset/group/getusers"
IDENTIFY = "/rest/2.0/face/v2/identify"


def variants(astronaut: np.ndarray, hopper: np.ndarray) -> list[str]:
    """A few distinct photos (different bytes) of the two people."""
    photos = []
    for scale in (1.0, 0.8, 0.6):
        for image in (astronaut, hopper):
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            photos.append(b64(cv2.resize(image, size)))
    return photos


def consistent(database: Path) -> None:
    db = sqlite3.connect(database)
    orphans = db.execute(
        "SELECT COUNT(*) FROM users u WHERE NOT EXISTS (SELECT 1 FROM faces f WHERE f.app_id = u.app_id "
        "AND f.group_id = u.group_id AND f.uid = u.uid)"
    ).fetchone()[0]
    homeless = db.execute(
        "SELECT COUNT(*) FROM faces f WHERE NOT EXISTS (SELECT 1 FROM users u WHERE f.app_id = u.app_id "
        "AND f.group_id = u.group_id AND f.uid = u.uid)"
    ).fetchone()[0]
    cropless = db.execute(
        "SELECT COUNT(*) FROM faces f WHERE NOT EXISTS (SELECT 1 FROM crops c WHERE c.app_id = f.app_id "
        "AND c.image_sha256 = f.image_sha256)"
    ).fetchone()[0]
    db.close()
    assert (orphans, homeless, cropless) == (0, 0, 0)


def test_sigkill_during_concurrent_enrolment_loses_no_acknowledged_face(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    photos = variants(astronaut, hopper)
    server = start_server(tmp_path)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def writer(worker: int) -> None:
        with httpx.Client(timeout=30, params={"access_token": server.token}) as client:
            for i in range(1000):
                if stop.is_set():
                    return
                uid = f"w{worker}_{i}"
                try:
                    body = client.post(
                        server.base_url + ADD,
                        data={
                            "uid": uid,
                            "user_info": uid,
                            "group_id": "crash",
                            "image": photos[i % len(photos)],
                        },
                    ).json()
                except httpx.TransportError:
                    return
                assert "error_code" not in body, body
                with lock:
                    acknowledged.append(uid)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while len(acknowledged) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    server.process.send_signal(signal.SIGKILL)  # requests are still in flight
    server.process.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    assert len(acknowledged) >= 20

    consistent(tmp_path / "data" / "renlian.sqlite3")
    restarted = start_server(tmp_path, app=server.app)
    try:
        # Tokens survive the restart too: the one issued before the crash still works.
        assert "error_code" not in restarted.call(USERS, token=server.token, group_id="crash")
        for uid in acknowledged:
            body = restarted.call(GET, uid=uid)
            assert body["result"] == [{"uid": uid, "user_info": uid, "group_id": "crash"}], body
        listed = restarted.call(USERS, group_id="crash", end="1000")
        assert set(acknowledged) <= {user["uid"] for user in listed["result"]}
        # The rebuilt index serves them: the probe's best match is one of the enrolled users.
        hit = restarted.call(IDENTIFY, group_id="crash", image=photos[0])["result"][0]
        assert hit["scores"][0] > 90
    finally:
        restarted.stop()


def test_concurrent_add_delete_identify_stay_consistent(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    photos = variants(astronaut, hopper)
    server = start_server(tmp_path)
    added: list[str] = []
    deleted: list[str] = []
    seen: list[str] = []
    errors: list[object] = []
    lock = threading.Lock()
    done = threading.Event()

    def adder(worker: int) -> None:
        with httpx.Client(timeout=30, params={"access_token": server.token}) as client:
            for i in range(8):
                uid = f"a{worker}_{i}"
                body = client.post(
                    server.base_url + ADD,
                    data={
                        "uid": uid,
                        "user_info": "x",
                        "group_id": "busy",
                        "image": photos[(worker + i) % 6],
                    },
                ).json()
                with lock:
                    (errors.append(body) if "error_code" in body else added.append(uid))

    def deleter() -> None:
        with httpx.Client(timeout=30, params={"access_token": server.token}) as client:
            while not done.is_set() or len(deleted) < len(added) // 2:
                with lock:
                    candidates = [
                        uid for uid in added if uid.endswith(("_1", "_3", "_5")) and uid not in deleted
                    ]
                if not candidates:
                    if done.is_set():
                        return
                    time.sleep(0.05)
                    continue
                body = client.post(server.base_url + DELETE, data={"uid": candidates[0]}).json()
                with lock:
                    (errors.append(body) if "error_code" in body else deleted.append(candidates[0]))

    def searcher() -> None:
        with httpx.Client(timeout=30, params={"access_token": server.token}) as client:
            while not done.is_set():
                body = client.post(
                    server.base_url + IDENTIFY,
                    data={"group_id": "busy", "image": photos[0], "user_top_num": "5"},
                ).json()
                if body.get("error_code") == 216618:  # nobody enrolled yet
                    continue
                with lock:
                    if "error_code" in body:
                        errors.append(body)
                    else:
                        seen.extend(hit["uid"] for hit in body["result"])

    adders = [threading.Thread(target=adder, args=(w,)) for w in range(3)]
    others = [
        threading.Thread(target=deleter),
        threading.Thread(target=searcher),
        threading.Thread(target=searcher),
    ]
    try:
        for thread in adders + others:
            thread.start()
        for thread in adders:
            thread.join(timeout=120)
        done.set()
        for thread in others:
            thread.join(timeout=120)
        assert errors == []
        assert seen and set(seen) <= set(added)
        remaining = set(added) - set(deleted)
        listed = server.call(USERS, group_id="busy", end="1000")
        assert {user["uid"] for user in listed["result"]} == remaining
        final = server.call(IDENTIFY, group_id="busy", image=photos[0], user_top_num="5")
        assert {hit["uid"] for hit in final["result"]} <= remaining
    finally:
        server.stop()
    consistent(tmp_path / "data" / "renlian.sqlite3")
