"""`renlian import`: enrol a folder-per-user tree of photos into one group.

Each photo is its own transaction, and a photo already enrolled for its user (same file checksum) is
skipped, so an interrupted import picks up where it stopped when run again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from renlian.errors import FaceApiError
from renlian.library.faces import enrolment_face
from renlian.library.ids import parse_uid
from renlian.library.library import FaceLibrary
from renlian.vision.image import ImageLimits, decode_bytes

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp"})


@dataclass
class ImportReport:
    enrolled: int = 0
    skipped: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


def photos_in(root: Path) -> Iterator[tuple[str, Path]]:
    """(uid, photo) for every photo in a folder per user, in a stable order."""
    for folder in sorted(path for path in root.iterdir() if path.is_dir()):
        for photo in sorted(folder.iterdir()):
            if photo.is_file() and photo.suffix.lower() in IMAGE_SUFFIXES:
                yield folder.name, photo


def import_tree(
    library: FaceLibrary,
    app_id: str,
    group: str,
    root: Path,
    limits: ImageLimits,
    *,
    workers: int,
    progress: bool,
) -> ImportReport:
    report = ImportReport()
    items = list(photos_in(root))

    def enrol(item: tuple[str, Path]) -> tuple[Path, str | None]:
        uid, path = item
        try:
            parse_uid(uid)
            data = path.read_bytes()
            sha256 = hashlib.sha256(data).hexdigest()
            if library.store.has_face(app_id, group, uid, sha256):
                return path, "skipped"
            face = enrolment_face(library.analyzer, data, decode_bytes(data, limits))
            library.add(app_id, uid, uid, [group], [face], replace=False, require_existing=False)
        except FaceApiError as exc:
            return path, f"{exc.error.code} {exc.message}" + (f": {exc.detail}" if exc.detail else "")
        except OSError as exc:
            return path, f"cannot read: {exc}"
        return path, None

    with ThreadPoolExecutor(workers) as pool:
        for path, outcome in tqdm(
            pool.map(enrol, items),
            total=len(items),
            desc=f"importing into {group}",
            unit="photo",
            disable=not progress,
        ):
            if outcome is None:
                report.enrolled += 1
            elif outcome == "skipped":
                report.skipped += 1
            else:
                report.failed.append((path, outcome))
    return report
