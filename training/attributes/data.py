"""The labelled sets behind the attribute heads, their fixed train/held-out splits, and feature extraction
through the service's own detector, landmarks and backbone (so training sees what serving sees).

Splits: a group (a subject where the set names one, else the photo) is held out when the first byte
of sha256("attributes:" + group) is below 52 (about 20%). The heads train on the rest only, so
bench/attributes.py can measure the shipped weights on the held-out part.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from bench.datasets import DATA, read_bgr
from renlian.models.cache import ModelCache
from renlian.models.registry import MODELS
from renlian.models.runtime import configure_opencv
from renlian.settings import Settings
from renlian.vision.backbone import FeatureBackbone
from renlian.vision.detector import YuNetDetector
from renlian.vision.image import BGRImage
from renlian.vision.landmarks import Landmark106
from renlian.vision.recognizer import align

HELD_OUT_BELOW = 52  # of 256: about a fifth of the groups
# Small crops (GENKI 64 px, CK+ 48 px) are enlarged to this size before detection: YuNet misses
# faces that fill a tiny frame. bench/attributes.py enlarges them the same way.
MIN_SIDE = 192


def held_out(group: str) -> bool:
    return hashlib.sha256(f"attributes:{group}".encode()).digest()[0] < HELD_OUT_BELOW


@dataclass(frozen=True)
class Item:
    path: Path
    group: str
    labels: dict[str, str]


def _rows(name: str) -> Iterator[dict[str, str]]:
    with (DATA / name / "labels.csv").open() as handle:
        yield from csv.DictReader(handle)


def _path(name: str, row: dict[str, str]) -> Path:
    relative = row.get("file") or row["image"]
    direct = DATA / name / relative
    return direct if direct.exists() else DATA / name / "images" / relative


def items(name: str) -> list[Item]:
    """Every labelled photo of one set, with the group its split is decided by."""
    group_of: dict[str, Callable[[dict[str, str]], str]] = {
        "nuaa": lambda row: row["subject"],
        "yale_faces": lambda row: row["identity"],
        "ck_plus_48": lambda row: row["subject"],
    }
    pick: Callable[[dict[str, str]], str] = group_of.get(name, lambda row: row.get("file") or row["image"])
    return [Item(_path(name, row), f"{name}:{pick(row)}", row) for row in _rows(name)]


def enlarge(image: BGRImage) -> BGRImage:
    side = max(image.shape[:2])
    if side >= MIN_SIDE:
        return image
    scale = MIN_SIDE / side
    enlarged: BGRImage = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    return enlarged


@dataclass
class Extracted:
    """Per item: found (the detector saw a face), pooled features, aligned crop, 106 landmarks."""

    found: NDArray[np.bool_]
    pooled: NDArray[np.float32]
    crops: NDArray[np.uint8]
    landmarks: NDArray[np.float32]


class Extractor:
    """The service's detector, landmark model and attribute backbone, one thread each."""

    def __init__(self) -> None:
        settings = Settings()
        configure_opencv(1)
        names = ("yunet", "landmark106", "sface", "mbf")
        paths = ModelCache(settings.model_cache()).ensure([MODELS[name] for name in names])
        self.detector = YuNetDetector(
            paths["yunet"], max_side=settings.detect_max_side, score_threshold=settings.detect_score_threshold
        )
        self.landmarks = Landmark106(paths["landmark106"], threads=1)
        self.backbone = FeatureBackbone(paths["sface"], paths["mbf"], threads=1)

    def __call__(self, path: Path) -> tuple[bool, NDArray[np.float32], BGRImage, NDArray[np.float32]]:
        image = enlarge(read_bgr(path))
        faces = self.detector.detect(image)
        if not faces:
            return (
                False,
                np.zeros(0, np.float32),
                np.zeros((112, 112, 3), np.uint8),
                np.zeros((106, 2), np.float32),
            )
        aligned = align(image, faces[0].kps5)
        return True, self.backbone(aligned).pooled(), aligned, self.landmarks(image, faces[0])


_worker: Extractor | None = None


def _init() -> None:
    global _worker
    _worker = Extractor()


def _run(path: Path) -> tuple[bool, NDArray[np.float32], BGRImage, NDArray[np.float32]]:
    assert _worker is not None
    return _worker(path)


def extract(name: str, cache_dir: Path) -> tuple[list[Item], Extracted]:
    """Features for every item of a set, cached in `cache_dir` (delete it after changing the backbone)."""
    listed = items(name)
    cache = cache_dir / f"{name}.npz"
    if cache.exists():
        with np.load(cache) as data:
            return listed, Extracted(data["found"], data["pooled"], data["crops"], data["landmarks"])
    with get_context("spawn").Pool(os.cpu_count() or 1, initializer=_init) as pool:
        results = list(
            tqdm(pool.imap(_run, [item.path for item in listed], chunksize=8), total=len(listed), desc=name)
        )
    dim = next(len(result[1]) for result in results if result[0])
    out = Extracted(
        np.array([result[0] for result in results]),
        np.stack([result[1] if result[0] else np.zeros(dim, np.float32) for result in results]),
        np.stack([result[2] for result in results]),
        np.stack([result[3] for result in results]),
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, found=out.found, pooled=out.pooled, crops=out.crops, landmarks=out.landmarks)
    return listed, out
