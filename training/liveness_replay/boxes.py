"""How the service's YuNet boxes differ from the RetinaFace boxes MiniFASNet's crops were cut around.

    # 1. with an OpenCV 4 build that still reads Caffe models (opencv-python-headless<4.13):
    python -m training.liveness_replay.boxes retina GIT_DIR /tmp/retina_boxes.json
    # 2. in the service's environment:
    python -m training.liveness_replay.boxes compare /tmp/retina_boxes.json

Upstream detects with its own RetinaFace (resources/detection_model, read from GIT_DIR at the
converted commit) and crops 2.7x and 4.0x around that box; the service detects with YuNet, whose box
is taller than wide. Step 2 prints, per data set, the medians (and interquartile ranges) of the
ratios that renlian.vision.liveness.square_box's MINIFAS_SIDE and MINIFAS_DROP were set from: the
RetinaFace side over YuNet's longer side, and the vertical offset of the centres over that side.
Every 8th photo of NUAA, LFW, UTKFace and SCUT-FBP5500 (../shared/data).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

from training.liveness_replay import UPSTREAM_COMMIT as COMMIT

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
SETS = {"nuaa": "", "lfw": "", "utkface": "images/", "scut_fbp5500": ""}


def photos() -> list[tuple[str, Path]]:
    found = []
    for name, prefix in SETS.items():
        with (DATA / name / "labels.csv").open() as handle:
            rows = list(csv.DictReader(handle))[::8]
        found += [(name, DATA / name / (prefix + (row.get("file") or row["image"]))) for row in rows]
    return found


def read(path: Path) -> np.ndarray:
    return np.asarray(cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR), np.uint8)


def retina(git_dir: Path, out: Path) -> None:
    """Upstream's Detection.get_bbox on every photo: [x, y, w, h, confidence]."""
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for member in ("deploy.prototxt", "Widerface-RetinaFace.caffemodel"):
            blob = subprocess.run(
                ["git", "--git-dir", str(git_dir), "show", f"{COMMIT}:resources/detection_model/{member}"],
                check=True,
                capture_output=True,
            ).stdout
            (Path(tmp) / member).write_bytes(blob)
            files.append(str(Path(tmp) / member))
        # OpenCV 5 dropped the Caffe importer (hence step 1's older OpenCV, and the ignore).
        net = cv2.dnn.readNetFromCaffe(*files)  # type: ignore[attr-defined,unused-ignore]
    boxes = {}
    for _, path in photos():
        image = read(path)
        height, width = image.shape[:2]
        aspect = width / height
        small = image
        if width * height >= 192 * 192:
            size = (int(192 * math.sqrt(aspect)), int(192 / math.sqrt(aspect)))
            small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        net.setInput(cv2.dnn.blobFromImage(small, 1, mean=(104, 117, 123)), "data")
        found = net.forward("detection_out").squeeze()
        best = found[int(np.argmax(found[:, 2]))]
        left, top, right, bottom = best[3] * width, best[4] * height, best[5] * width, best[6] * height
        boxes[str(path)] = [
            float(left),
            float(top),
            float(right - left + 1),
            float(bottom - top + 1),
            float(best[2]),
        ]
    out.write_text(json.dumps(boxes))


def compare(boxes_json: Path) -> None:
    from bench.liveness_replay import detector

    find = detector()
    boxes = json.loads(boxes_json.read_text())
    ratios: dict[str, list[list[float]]] = {}
    for name, path in photos():
        faces = find.detect(read(path))
        rx, ry, rw, rh, confidence = boxes[str(path)]
        if not faces or confidence < 0.6:
            continue
        x, y, w, h = (float(v) for v in faces[0].box)
        longer = max(w, h)
        ratios.setdefault(name, []).append(
            [
                max(rw, rh) / longer,
                (ry + rh / 2 - y - h / 2) / longer,
                (rx + rw / 2 - x - w / 2) / longer,
                h / w,
                rh / rw,
            ]
        )
    print(
        "set, photos: median (IQR) of retina side / yunet longer side, centre drop / side, "
        "shift / side, yunet h/w, retina h/w"
    )
    for name, values in ratios.items():
        table = np.array(values)
        median = np.median(table, axis=0)
        iqr = np.percentile(table, 75, axis=0) - np.percentile(table, 25, axis=0)
        cells = ", ".join(f"{m:.3f} ({q:.3f})" for m, q in zip(median, iqr, strict=True))
        print(f"{name}, {len(table)}: {cells}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    first = commands.add_parser("retina")
    first.add_argument("git_dir", type=Path)
    first.add_argument("out", type=Path)
    second = commands.add_parser("compare")
    second.add_argument("boxes", type=Path)
    args = parser.parse_args()
    if args.command == "retina":
        retina(args.git_dir, args.out)
    else:
        compare(args.boxes)


if __name__ == "__main__":
    main()
