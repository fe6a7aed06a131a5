"""Reproduce the cosine -> 0-100 score map in renlian/vision/score.py and measure FAR/FRR.

    python -m bench.calibrate [--recognizer mbf|sface|both] [--write-docs]

For every identity set it embeds each photo (celeb_aligned112 is already aligned to the ArcFace
template and goes straight to the embedder; the others are detected, padded first if the face fills
the frame), scores every genuine and every impostor pair within the set, and prints the anchors
(the impostor cosine quantiles) next to the ones the service ships. With --write-docs it rewrites
docs/accuracy.md with FAR and FRR at scores 60/70/80/90 under the shipped map, plus LFW fold 0.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from bench.datasets import DATA, IDENTITY_SETS, analyzer, identity_set, machine, read_bgr, write_section
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.recognizer import align
from renlian.vision.score import CALIBRATIONS

CACHE = Path(".bench")
# Scores 30-80 sit at impostor-cosine quantiles (the worst set's); 90 at the genuine median of the
# hardest set, so that a typical same-person pair scores about 90 as it does on Baidu's service.
QUANTILES = {30: 0.50, 60: 0.90, 70: 0.99, 80: 0.999}
THRESHOLDS = (60, 70, 80, 90)


def embed_photo(model: FaceAnalyzer, image: np.ndarray, aligned: bool) -> np.ndarray | None:
    if aligned:
        return model.embedder.embed(cv2.resize(image, (112, 112)))
    for pad in (0, image.shape[0] // 2):
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT) if pad else image
        faces = model.detector.detect(padded)
        if faces:
            return model.embedder.embed(align(padded, faces[0].kps5))
    return None


def embed_set(model: FaceAnalyzer, name: str, recognizer: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Embeddings and integer labels of one set (cached under .bench/), and how many photos had no face."""
    cache = CACHE / f"embeddings-{recognizer}-{name}.npz"
    if cache.is_file():
        stored = np.load(cache)
        return stored["vectors"], stored["labels"], int(stored["missed"])
    samples = identity_set(name)
    names = sorted({sample.identity for sample in samples})
    vectors, labels, missed = [], [], 0
    for sample in tqdm(samples, desc=f"{recognizer} {name}", unit="photo"):
        vector = embed_photo(model, read_bgr(sample.path), aligned=name == "celeb_aligned112")
        if vector is None:
            missed += 1
            continue
        vectors.append(vector)
        labels.append(names.index(sample.identity))
    CACHE.mkdir(exist_ok=True)
    np.savez(cache, vectors=np.array(vectors), labels=np.array(labels), missed=missed)
    return np.array(vectors), np.array(labels), missed


def pair_cosines(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cosines = vectors @ vectors.T
    upper = np.triu_indices(len(labels), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    values = cosines[upper]
    return values[same], values[~same]


def lfw_fold0(model: FaceAnalyzer) -> tuple[np.ndarray, np.ndarray]:
    """Cosines of LFW View-2 fold 0 (the fold shared here): genuine, impostor."""
    root = DATA / "lfw"
    with (root / "pairs.csv").open() as handle:
        pairs = list(csv.DictReader(handle))
    cache: dict[str, np.ndarray | None] = {}

    def vector(name: str) -> np.ndarray | None:
        if name not in cache:
            cache[name] = embed_photo(model, read_bgr(root / name), aligned=False)
        return cache[name]

    genuine: list[float] = []
    impostor: list[float] = []
    for pair in tqdm(pairs, desc="lfw fold 0", unit="pair"):
        a, b = vector(pair["image_a"]), vector(pair["image_b"])
        # A pair whose face was missed counts as a rejection: score it below any threshold.
        cosine = float(a @ b) if a is not None and b is not None else -1.0
        (genuine if pair["same_identity"] == "1" else impostor).append(cosine)
    return np.array(genuine), np.array(impostor)


def rates(
    genuine: np.ndarray, impostor: np.ndarray, recognizer: str, threshold: float
) -> tuple[float, float]:
    calibration = CALIBRATIONS[recognizer]
    far = float(np.mean([calibration.score(c) >= threshold for c in impostor]))
    frr = float(np.mean([calibration.score(c) < threshold for c in genuine]))
    return far, frr


def calibrate(recognizer: str) -> list[str]:
    model = analyzer(recognizer)
    rows, anchors = [], {}
    per_set = {}
    for name in IDENTITY_SETS:
        vectors, labels, missed = embed_set(model, name, recognizer)
        genuine, impostor = pair_cosines(vectors, labels)
        per_set[name] = (genuine, impostor, missed, len(labels))
    for score, quantile in QUANTILES.items():
        # Rounded up, so that no more than the quantile's share of impostors reaches the score.
        worst = max(float(np.quantile(imp, quantile, method="higher")) for _, imp, _, _ in per_set.values())
        anchors[score] = math.ceil(worst * 10_000) / 10_000
    anchors[90] = round(min(float(np.median(gen)) for gen, _, _, _ in per_set.values()), 4)
    shipped = CALIBRATIONS[recognizer].cosines
    print(
        f"\n{recognizer}: measured anchors (cosine at score 30/60/70/80/90):",
        ", ".join(f"{anchors[s]:.4f}" for s in (*QUANTILES, 90)),
    )
    print(f"{recognizer}: shipped anchors: {', '.join(f'{c:.4f}' for c in shipped[1:-1])}")
    per_set["lfw_fold0"] = (*lfw_fold0(model), 0, 0)
    for name, (genuine, impostor, missed, photos) in per_set.items():
        cells = []
        for threshold in THRESHOLDS:
            far, frr = rates(genuine, impostor, recognizer, threshold)
            cells.append(f"{100 * far:.3f}% / {100 * frr:.2f}%")
        faces = f"{photos} ({missed} no face)" if photos else "600 pairs"
        rows.append(
            f"| {recognizer} | {name} | {faces} | {len(genuine):,} / {len(impostor):,} | "
            + " | ".join(cells)
            + " |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recognizer", choices=["mbf", "sface", "both"], default="both")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    recognizers = ["mbf", "sface"] if args.recognizer == "both" else [args.recognizer]
    rows = [row for recognizer in recognizers for row in calibrate(recognizer)]
    table = [
        "| embedder | set | photos | genuine / impostor pairs | FAR / FRR at 60 | at 70 | at 80 | at 90 |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    print("\n".join(table))
    if args.write_docs:
        write_section(
            Path("docs/accuracy.md"),
            "calibrate",
            [f"Measured {machine()} with `python -m bench.calibrate --write-docs`.", "", *table],
        )


if __name__ == "__main__":
    main()
