"""The `renlian` command as users and outside checks run it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from renlian.models.registry import MODELS
from tests.conftest import create_app


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "renlian.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


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
    assert (tmp_path / "data").is_dir()


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
