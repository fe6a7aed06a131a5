"""Loaders for the labelled face sets in ../shared/data, shared by every bench script."""

from __future__ import annotations

import csv
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from renlian.models.cache import ModelCache
from renlian.settings import Settings
from renlian.vision.analyzer import FaceAnalyzer, load_analyzer

DATA = Path(os.environ.get("RENLIAN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
IDENTITY_SETS = ("celeb_aligned112", "orl_faces", "yale_faces")


@dataclass(frozen=True)
class Sample:
    path: Path
    identity: str


def identity_set(name: str) -> list[Sample]:
    root = DATA / name
    with (root / "labels.csv").open() as handle:
        return [Sample(root / row["file"], row["identity"]) for row in csv.DictReader(handle)]


def read_bgr(path: Path) -> np.ndarray:
    """Any image the sets hold (GIF and PGM included) as 8-bit BGR."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def analyzer(recognizer: str = "mbf", threads: int = 1) -> FaceAnalyzer:
    settings = Settings()
    config = settings.analyzer_config(recognizer=recognizer, threads=threads)
    return load_analyzer(ModelCache(settings.model_cache()), config, progress=True)


def machine() -> str:
    """A one-line description of where a figure was measured, for the docs."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"{date.today().isoformat()}, {os.cpu_count()} cores ({cpu}), commit {commit or 'unknown'}"


def write_section(path: Path, name: str, lines: list[str]) -> None:
    """Replace the block between `<!-- name:start -->` and `<!-- name:end -->`, or append one."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text() if path.exists() else ""
    block = "\n".join([start, *lines, end])
    if start in text:
        text = text[: text.index(start)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)
