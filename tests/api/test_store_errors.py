"""A failing database over real HTTP: 216300 (Baidu's retryable "db error"), never 216500, and a
server that carries on once the database does."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.conftest import b64, create_app, start_server
from tests.store.test_errors import damage

ADD = "/rest/2.0/face/v2/faceset/user/add"
GET = "/rest/2.0/face/v2/faceset/user/get"
GETLIST = "/rest/2.0/face/v2/faceset/group/getlist"
TOKEN = "/oauth/2.0/token"


def db_error(body: dict[str, Any]) -> str:
    assert body["error_code"] == 216300, body
    assert body["error_msg"] == "db error"
    detail: str = body.get("error_detail", "")
    return detail


def test_a_locked_store_answers_216300_after_the_busy_timeout_then_recovers(
    tmp_path: Path, astronaut: np.ndarray
) -> None:
    server = start_server(tmp_path, {"RENLIAN_DB_BUSY_TIMEOUT_SECONDS": "0.5"})
    uid = "uid_not_in_any_answer"
    add = {"uid": uid, "group_id": "g", "user_info": "info", "image": b64(astronaut)}
    locker = sqlite3.connect(server.data_dir / "renlian.sqlite3", isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")  # as another process writing at length would
        started = time.monotonic()
        detail = db_error(server.call(ADD, **add))
        waited = time.monotonic() - started
        assert "busy" in detail and uid not in detail
        # The server waited for the lock as long as it was told to, not the 5 s default.
        assert waited < 4, waited
        # Issuing a token writes nothing (a token is a MAC): it is not held up by the lock.
        grant = httpx.post(
            server.base_url + TOKEN,
            data={
                "grant_type": "client_credentials",
                "client_id": server.app["api_key"],
                "client_secret": server.app["secret_key"],
            },
            timeout=60,
        )
        assert "access_token" in grant.json(), grant.text
        # Reads go on beside the lock (WAL): the caller's token is still honoured.
        assert server.call(GET, uid=uid)["error_code"] == 216611
        locker.execute("ROLLBACK")
        assert "error_code" not in server.call(ADD, **add)
        assert [user["uid"] for user in server.call(GET, uid=uid)["result"]] == [uid]
    finally:
        locker.close()
        server.stop()


def test_a_damaged_table_answers_216300_for_reads(tmp_path: Path) -> None:
    data = tmp_path / "data"
    app = create_app(data)
    # The users table and its indexes are damaged; apps, tokens and faces are intact, so the server
    # starts and authenticates, and only the reads of users fail.
    damage(data / "renlian.sqlite3", "users")
    server = start_server(tmp_path, app=app)
    try:
        for path, fields in ((GET, {"uid": "someone"}), (GETLIST, {})):
            body = server.call(path, **fields)
            assert "damaged" in db_error(body), path
        log = (tmp_path / "server.log").read_text()
        assert "SQLITE_CORRUPT" in log and "216500" not in log and "unexpected failure" not in log
    finally:
        server.stop()
