"""The labelled sets behind the v3 detect fields (eye_status, emotion, mask, spoofing), their fixed
train/held-out splits, and feature extraction through the service's own detector, landmarks and
backbone, so training sees what a detect request computes.

Splits: a group is held out when training.attributes.data.held_out says so (the first byte of
sha256("attributes:" + group) below 52 of 256, about a fifth). The group is the subject where a set
names one (CK+), the source photo (CEW), the duplicate cluster (FER-2013, the spoofing sets, the eye
crops), or the union of subject, augmentation stem and duplicate cluster (the mask photos, whose
augmented copies must stay with their originals). JAFFE has five subjects here, too few for a hashed
fifth: its two subjects with the lowest hash are held out. Faces taken from other folders (open eyes,
no mask) keep the attribute heads' split, so no held-out photo of theirs trains anything.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from bench.datasets import DATA, read_bgr
from renlian.vision.image import BGRImage
from renlian.vision.recognizer import align
from training.attributes import data as attributes_data
from training.attributes.occlusion import Occluder, occluders, overlay

JAFFE_HELD_OUT_SUBJECTS = 2
GROUP_OF: dict[str, Callable[[dict[str, str]], str]] = {
    "emotion_fer2013": lambda row: row["dup_group"],
    "emotion_jaffe": lambda row: row["subject"],
    "ck_plus_48": lambda row: row["subject"],
    "eye_cew_closed_faces": lambda row: row["source_photo"],
    "eye_crops_open_closed": lambda row: row["dup_group"],
    "spoof_ciplab_photoshop_160": lambda row: row["dup_group"],
    "spoof_stylegan_vs_ffhq_256": lambda row: row["dup_group"],
}


@dataclass(frozen=True)
class Item:
    path: Path
    group: str
    labels: dict[str, str]


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name / "labels.csv").open() as handle:
        return list(csv.DictReader(handle))


def _linked_groups(rows: list[dict[str, str]], columns: tuple[str, ...]) -> list[str]:
    """One group per set of rows linked by sharing a value in any of `columns` (union-find)."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[str, str], int] = {}
    for i, row in enumerate(rows):
        for column in columns:
            if row.get(column):
                parent[find(i)] = find(first.setdefault((column, row[column]), i))
    return [rows[find(i)]["image"] for i in range(len(rows))]


def _jaffe_held_out() -> frozenset[str]:
    subjects = sorted({row["subject"] for row in _rows("emotion_jaffe")})
    ranked = sorted(subjects, key=lambda s: hashlib.sha256(f"attributes:emotion_jaffe:{s}".encode()).digest())
    return frozenset(f"emotion_jaffe:{s}" for s in ranked[:JAFFE_HELD_OUT_SUBJECTS])


def items(name: str) -> list[Item]:
    """Every labelled photo of one set, with the group its split is decided by."""
    if name not in GROUP_OF and name != "mask_chandrikadeb7_real":
        return [Item(i.path, i.group, i.labels) for i in attributes_data.items(name)]
    rows = _rows(name)
    if name == "mask_chandrikadeb7_real":
        groups = _linked_groups(rows, ("subject", "aug_group", "dup_group"))
    else:
        groups = [GROUP_OF[name](row) for row in rows]
    out = []
    for row, group in zip(rows, groups, strict=True):
        relative = row.get("image") or row["file"]
        direct = DATA / name / relative
        path = direct if direct.exists() else DATA / name / "images" / relative
        out.append(Item(path, f"{name}:{group}", row))
    return out


def held_out(item: Item) -> bool:
    if item.group.startswith("emotion_jaffe:"):
        return item.group in _jaffe_held_out()
    return attributes_data.held_out(item.group)


@dataclass
class Extracted:
    """Per item: found (the detector saw a face), and the backbone's stacked maps (float16, 1536 x 7 x 7)
    of the aligned crop and of its mirror image."""

    found: NDArray[np.bool_]
    maps: NDArray[np.float16]
    mirrored: NDArray[np.float16]


Result = tuple[NDArray[np.float16], NDArray[np.float16]]
_worker: attributes_data.Extractor | None = None
_occluders: dict[str, Occluder] = {}


def _init() -> None:
    global _worker, _occluders
    _worker = attributes_data.Extractor()
    _occluders = {occluder.name: occluder for occluder in occluders()}


def describe(
    worker: attributes_data.Extractor, image: BGRImage, cover: Occluder | None, seed: int
) -> Result | None:
    """The largest face's maps, as the service computes them for a detect, and its mirror's; with
    `cover`, an OCFR-2022 occluder is laid on the aligned crop first (seeded jitter)."""
    faces = worker.detector.detect(image)
    if not faces:
        return None
    aligned = align(image, faces[0].kps5)
    if cover is not None:
        aligned = overlay(aligned, cover, np.random.default_rng(seed))[0]
    maps = worker.backbone(aligned).maps.astype(np.float16)
    mirrored = worker.backbone(np.ascontiguousarray(aligned[:, ::-1])).maps.astype(np.float16)
    return maps, mirrored


def _run(job: tuple[Path, str, int]) -> Result | None:
    assert _worker is not None
    path, cover, seed = job
    return describe(_worker, attributes_data.enlarge(read_bgr(path)), _occluders.get(cover), seed)


def extract(name: str, listed: list[Item], cache_dir: Path, covers: list[str] | None = None) -> Extracted:
    """Features for `listed`, cached in cache_dir/name.npz; `covers` names an OCFR-2022 occluder to lay
    on each face (or "" for none)."""
    cache = cache_dir / f"{name}.npz"
    if cache.exists():
        with np.load(cache) as saved:
            if len(saved["found"]) == len(listed):
                return Extracted(saved["found"], saved["maps"], saved["mirrored"])
    jobs = [
        (item.path, cover, seed)
        for seed, (item, cover) in enumerate(zip(listed, covers or [""] * len(listed), strict=True))
    ]
    with get_context("spawn").Pool(min(2, os.cpu_count() or 1), initializer=_init) as pool:
        results = list(tqdm(pool.imap(_run, jobs, chunksize=8), total=len(listed), desc=name))
    empty = np.zeros((1536, 7, 7), np.float16)
    out = Extracted(
        np.array([result is not None for result in results]),
        np.stack([result[0] if result else empty for result in results]),
        np.stack([result[1] if result else empty for result in results]),
    )
    cache_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, found=out.found, maps=out.maps, mirrored=out.mirrored)
    return out
