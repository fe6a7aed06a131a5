"""Measure every detect attribute on the held-out fifth of ../shared/data, through the service's analyzer.

    python -m bench.attributes [--write-docs]

The shipped heads never saw these photos (training/attributes/data.held_out). Each photo goes through
exactly what a detect with every face_fields value runs; small crops (GENKI, CK+) are enlarged first,
as in training. Writes the results section of docs/attributes.md.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from itertools import pairwise
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from bench.datasets import analyzer, machine, read_bgr, write_section
from renlian.vision.analyzer import FaceAnalyzer
from renlian.vision.attributes import ATTRIBUTE_FIELDS, OCCLUSION_REGIONS, Attributes
from renlian.vision.recognizer import align
from training.attributes import data
from training.attributes.occlusion import HELD_OUT_OCCLUDERS, occluders, overlay

DOCS = Path(__file__).resolve().parents[1] / "docs" / "attributes.md"
ALL = frozenset(ATTRIBUTE_FIELDS)
SETS = (
    "utkface",
    "genki4k",
    "scut_fbp5500",
    "faceshape_niten19",
    "amls1819_human_cartoon",
    "nuaa",
    "yale_faces",
    "ck_plus_48",
)
RACE_TO_BAIDU = {"asian": "yellow", "white": "white", "black": "black", "indian": "arabs", "others": "arabs"}
BAIDU_RACES = ("yellow", "white", "black", "arabs")
SHAPE_TO_BAIDU = {"heart": "heart", "oblong": "oval", "oval": "oval", "round": "round", "square": "square"}

_analyzer: FaceAnalyzer | None = None


def _init() -> None:
    global _analyzer
    _analyzer = analyzer(threads=1)


def _describe(path: Path) -> Attributes | None:
    assert _analyzer is not None
    faces = _analyzer.detect(data.enlarge(read_bgr(path)), 1, attributes=ALL)
    return faces[0].attributes if faces else None


def confusion(truth: Sequence[str], predicted: Sequence[str], labels: Sequence[str]) -> list[str]:
    lines = [
        "| true \\ predicted | " + " | ".join(labels) + " | n | recall |",
        "|---" * (len(labels) + 3) + "|",
    ]
    for label in labels:
        row = [sum(1 for t, p in zip(truth, predicted, strict=True) if t == label and p == o) for o in labels]
        n = sum(row)
        recall = f"{row[labels.index(label)] / n:.1%}" if n else "-"
        lines.append(f"| {label} | " + " | ".join(map(str, row)) + f" | {n} | {recall} |")
    return lines


def _agree(truth: Sequence[str], predicted: Sequence[str]) -> float:
    return float(np.mean([t == p for t, p in zip(truth, predicted, strict=True)]))


def ece(probabilities: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    """Expected calibration error of the returned class's probability."""
    p, c = np.array(probabilities), np.array(correct, float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for lo, hi in pairwise(edges):
        inside = (p > lo) & (p <= hi)
        if inside.any():
            total += inside.mean() * abs(p[inside].mean() - c[inside].mean())
    return float(total)


def auc(scores: Sequence[float], positive: Sequence[bool]) -> float:
    s, y = np.array(scores), np.array(positive, bool)
    if y.all() or not y.any():
        return float("nan")
    ranks = np.argsort(np.argsort(s)) + 1.0
    return float((ranks[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum()))


def measure(results: dict[str, list[tuple[data.Item, Attributes | None]]]) -> list[str]:
    lines: list[str] = []
    found = {name: [(i, a) for i, a in rows if a is not None] for name, rows in results.items()}
    lines.append("| set | held-out photos | face found |")
    lines.append("|---|---|---|")
    for name, rows in results.items():
        lines.append(f"| {name} | {len(rows)} | {len(found[name])} |")

    utk = found["utkface"]
    gender_truth = [i.labels["gender"] for i, _ in utk]
    gender_pred = [a.gender[0] for _, a in utk if a.gender]
    gender_ok = [t == p for t, p in zip(gender_truth, gender_pred, strict=True)]
    ages = np.array([float(i.labels["age"]) for i, _ in utk])
    age_pred = np.array([a.age for _, a in utk])
    adults = ages >= 18
    lines += [
        "",
        "### Gender (UTKFace held-out)",
        "",
        f"Accuracy **{np.mean(gender_ok):.2%}** (target 93%); aged 18 or more "
        f"{np.mean(np.array(gender_ok)[adults]):.2%}, under 10 {np.mean(np.array(gender_ok)[ages < 10]):.2%} "
        f"({int((ages < 10).sum())} of {len(ages)} photos). Calibration error (ECE) of gender_probability "
        f"{ece([a.gender[1] for _, a in utk if a.gender], gender_ok):.3f}.",
        "",
        *confusion(gender_truth, gender_pred, ("female", "male")),
        "",
        "### Age (UTKFace held-out)",
        "",
        f"MAE **{np.mean(np.abs(age_pred - ages)):.2f} years** (target 6); by true age: "
        + ", ".join(
            f"{lo}-{hi - 1}: {np.mean(np.abs(age_pred - ages)[(ages >= lo) & (ages < hi)]):.1f}"
            for lo, hi in ((0, 10), (10, 20), (20, 40), (40, 60), (60, 120))
        )
        + ".",
    ]

    race_truth = [i.labels["race"] for i, _ in utk]
    race_pred = [a.race[0] for _, a in utk if a.race]
    race_truth_baidu = [RACE_TO_BAIDU[r] for r in race_truth]
    race_ok = [t == p for t, p in zip(race_truth_baidu, race_pred, strict=True)]
    lines += [
        "",
        "### Race (UTKFace held-out, labels mapped to Baidu's names)",
        "",
        f"Accuracy on Baidu's four names **{np.mean(race_ok):.2%}** (target 85%); "
        f"ECE {ece([a.race[1] for _, a in utk if a.race], race_ok):.3f}. "
        "Rows are the true Baidu name; UTKFace's indian and others both count as arabs.",
        "",
        *confusion(race_truth_baidu, race_pred, BAIDU_RACES),
        "",
        "Per UTKFace class (share given the mapped Baidu name):",
        "",
        "| UTKFace class | n | correct |",
        "|---|---|---|",
        *(
            f"| {cls} | {sum(1 for t in race_truth if t == cls)} | "
            f"{np.mean([ok for t, ok in zip(race_truth, race_ok, strict=True) if t == cls]):.1%} |"
            for cls in ("white", "black", "asian", "indian", "others")
        ),
    ]

    genki = found["genki4k"]
    smile_truth = [i.labels["smile"] == "1" for i, _ in genki]
    smile_pred = [a.expression[0] >= 1 for _, a in genki if a.expression]
    smile_ok = [t == p for t, p in zip(smile_truth, smile_pred, strict=True)]
    ck = found["ck_plus_48"]
    by_expression: dict[str, list[int]] = {}
    for item, attributes in ck:
        assert attributes.expression is not None
        by_expression.setdefault(item.labels["expression"], []).append(attributes.expression[0])
    lines += [
        "",
        "### Expression",
        "",
        f"Smile or laugh against none, GENKI-4K held-out: **{np.mean(smile_ok):.2%}** (target 93%).",
        "",
        "CK+ held-out subjects (posed; 48 px grey crops enlarged 4x), share of each returned value:",
        "",
        "| CK+ label | n | 0 none | 1 smile | 2 laugh |",
        "|---|---|---|---|---|",
        *(
            f"| {label} | {len(values)} | "
            + " | ".join(f"{np.mean(np.array(values) == v):.0%}" for v in (0, 1, 2))
            + " |"
            for label, values in sorted(by_expression.items())
        ),
    ]

    scut = found["scut_fbp5500"]
    beauty_truth = np.array([float(i.labels["beauty_0to100"]) for i, _ in scut])
    beauty_pred = np.array([a.beauty for _, a in scut])
    lines += [
        "",
        "### Beauty (SCUT-FBP5500 held-out)",
        "",
        "Pearson correlation with the raters' mean "
        f"**{np.corrcoef(beauty_truth, beauty_pred)[0, 1]:.3f}** (target 0.85); "
        f"MAE {np.mean(np.abs(beauty_truth - beauty_pred)):.1f} points on the 0-100 scale.",
    ]

    shapes = found["faceshape_niten19"]
    shape_truth = [SHAPE_TO_BAIDU[i.labels["face_shape"]] for i, _ in shapes]
    shape_pred = [max(a.faceshape, key=lambda kv: kv[1])[0] for _, a in shapes if a.faceshape]
    lines += [
        "",
        "### Face shape (Face Shape dataset held-out; oblong counted as oval)",
        "",
        "Top shape agrees with the (noisy, per-celebrity) label for "
        f"**{_agree(shape_truth, shape_pred):.1%}** "
        "of faces (always answering the commonest label would score "
        f"{max(shape_truth.count(s) for s in set(shape_truth)) / len(shape_truth):.0%}); "
        f"the triangle rule fired on {np.mean([p == 'triangle' for p in shape_pred]):.1%}.",
        "",
        *confusion(shape_truth, shape_pred, ("square", "triangle", "oval", "heart", "round")),
    ]

    glasses_truth, glasses_pred = [], []
    for name, column in (
        ("amls1819_human_cartoon", "glasses_type"),
        ("nuaa", "glasses"),
        ("yale_faces", "glasses(1/0 where stated)"),
    ):
        for item, attributes in found[name]:
            value = item.labels.get(column, "")
            if not value or (name == "amls1819_human_cartoon" and item.labels["class"] != "human"):
                continue
            truth = value if name == "amls1819_human_cartoon" else ("ordinary" if value == "1" else "none")
            assert attributes.glasses is not None
            glasses_truth.append(truth)
            glasses_pred.append(("none", "ordinary", "sunglasses")[attributes.glasses[0]])
    lines += [
        "",
        "### Glasses (real photos only: CelebA, NUAA, Yale held-out)",
        "",
        f"Accuracy **{_agree(glasses_truth, glasses_pred):.1%}** (target 90%).",
        "",
        *confusion(glasses_truth, glasses_pred, ("none", "ordinary", "sunglasses")),
    ]

    kinds_all = [(i, a) for i, a in results["amls1819_human_cartoon"] if i.labels["class"] != "noise_nonface"]
    kinds = [(i, a) for i, a in kinds_all if a is not None]
    kind_truth = [i.labels["class"] for i, _ in kinds]
    kind_pred = ["cartoon" if a.qualities and a.qualities.cartoon > 0.5 else "human" for _, a in kinds]
    cartoons = [a for i, a in kinds_all if i.labels["class"] == "cartoon"]
    lines += [
        "",
        "### Face type (CelebA photos against Google Cartoon Set avatars, held-out)",
        "",
        f"Accuracy **{_agree(kind_truth, kind_pred):.1%}** (target 98%) over detected faces; "
        f"the detector found {sum(a is not None for a in cartoons)} of {len(cartoons)} cartoon faces.",
        "",
        *confusion(kind_truth, kind_pred, ("human", "cartoon")),
    ]
    return lines


def degradations(model: FaceAnalyzer, items: list[data.Item]) -> list[str]:
    """Blur, illumination and completeness on controlled changes to held-out UTKFace photos."""
    steps: dict[str, list[list[float]]] = {"blur": [], "illumination": [], "completeness": []}
    for item in items:
        image = cv2.copyMakeBorder(read_bgr(item.path), 60, 60, 60, 60, cv2.BORDER_REFLECT)
        faces = model.detect(image, 1)
        if not faces:
            continue
        x, _, w, _ = faces[0].box
        variants: dict[str, list[np.ndarray]] = {
            "blur": [cv2.GaussianBlur(image, (0, 0), s) if s else image for s in (0, 1, 2, 3, 4)],
            "illumination": [(image.astype(np.float32) * g).astype(np.uint8) for g in (1.0, 0.75, 0.5, 0.25)],
            "completeness": [image[:, max(0, int(x + w * f)) :].copy() for f in (-1.0, 0.2, 0.35, 0.5)],
        }
        row: dict[str, list[float]] = {}
        for kind, images in variants.items():
            values = []
            for variant in images:
                found = model.detect(variant, 1, attributes=frozenset({"qualities"}))
                if not found or found[0].attributes is None or found[0].attributes.qualities is None:
                    break
                q = found[0].attributes.qualities
                values.append(
                    {"blur": q.blur, "illumination": q.illumination, "completeness": q.incompleteness}[kind]
                )
            if len(values) == len(images):
                row[kind] = values
        for kind, values in row.items():
            steps[kind].append(values)
    lines = [
        "| measure | change | mean value at each step | faces | monotone for |",
        "|---|---|---|---|---|",
    ]
    labels = {
        "blur": "Gaussian sigma 0, 1, 2, 3, 4 px",
        "illumination": "pixel gain 1, 0.75, 0.5, 0.25",
        "completeness": "frame starts at the face's left edge, then 20, 35, 50% into it",
    }
    for kind, rows in steps.items():
        table = np.array(rows)
        rising = kind != "illumination"
        diffs = np.diff(table, axis=1)
        monotone = np.mean(np.all(diffs >= 0, axis=1) if rising else np.all(diffs <= 0, axis=1))
        means = ", ".join(f"{v:.3f}" if kind != "illumination" else f"{v:.0f}" for v in table.mean(axis=0))
        lines.append(f"| {kind} | {labels[kind]} | {means} | {len(table)} | {monotone:.1%} |")
    return lines


def occlusion_eval(
    model: FaceAnalyzer, utk: list[data.Item], celeba: list[tuple[data.Item, Attributes | None]]
) -> list[str]:
    """Per-region AUC: held-out occluders on held-out UTKFace crops; real sunglasses on CelebA."""
    rng = np.random.default_rng(7)
    unseen = [o for o in occluders() if o.name in HELD_OUT_OCCLUDERS]
    scores: dict[str, list[float]] = {r: [] for r in OCCLUSION_REGIONS}
    truth: dict[str, list[bool]] = {r: [] for r in OCCLUSION_REGIONS}
    for k, item in enumerate(utk):
        image = read_bgr(item.path)
        faces = model.detect(image, 1)
        if not faces:
            continue
        crop = align(image, faces[0].kps5)
        labels = np.zeros(len(OCCLUSION_REGIONS), int)
        if k % 2 == 0:
            crop, labels = overlay(crop, unseen[(k // 2) % len(unseen)], rng)
        # The crop itself is the image: a face filling it, detected and aligned again by the service.
        framed = cv2.copyMakeBorder(crop, 56, 56, 56, 56, cv2.BORDER_REPLICATE)
        found = model.detect(framed, 1, attributes=frozenset({"qualities"}))
        if not found or found[0].attributes is None or found[0].attributes.qualities is None:
            continue
        for r, region in enumerate(OCCLUSION_REGIONS):
            scores[region].append(found[0].attributes.qualities.occlusion[region])
            truth[region].append(bool(labels[r]))
    real_scores: dict[str, list[float]] = {"left_eye": [], "right_eye": []}
    real_truth: list[bool] = []
    for item, attributes in celeba:
        if attributes is None or attributes.qualities is None or not item.labels.get("glasses_type"):
            continue
        real_truth.append(item.labels["glasses_type"] == "sunglasses")
        for region in real_scores:
            real_scores[region].append(attributes.qualities.occlusion[region])
    lines = [
        "| region | AUC, unseen occluders (synthetic) | occluded / clear crops "
        "| AUC, real sunglasses (CelebA) |",
        "|---|---|---|---|",
    ]
    for region in OCCLUSION_REGIONS:
        real = f"{auc(real_scores[region], real_truth):.3f}" if region in real_scores else "-"
        lines.append(
            f"| {region} | {auc(scores[region], truth[region]):.3f} | {sum(truth[region])} / "
            f"{len(truth[region]) - sum(truth[region])} | {real} |"
        )
    return [
        *lines,
        "",
        f"Real sunglasses: {sum(real_truth)} wearers against {len(real_truth) - sum(real_truth)} without: "
        "every "
        "CelebA photo of the set with a glasses label (the occlusion heads never saw CelebA).",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--limit", type=int, default=0, help="at most this many held-out photos per set")
    args = parser.parse_args()
    held: dict[str, list[data.Item]] = {}
    for name in SETS:
        chosen = [item for item in data.items(name) if data.held_out(item.group)]
        held[name] = chosen[: args.limit] if args.limit else chosen
    # The occlusion heads never saw CelebA, so every CelebA photo with a glasses label can test them.
    held["celeba_all"] = [
        item
        for item in data.items("amls1819_human_cartoon")
        if item.labels["glasses_type"] and not data.held_out(item.group)
    ] + [item for item in held["amls1819_human_cartoon"] if item.labels["glasses_type"]]
    queue = [(name, item) for name, rows in held.items() for item in rows]
    with get_context("spawn").Pool(2, initializer=_init) as pool:
        described = list(
            tqdm(pool.imap(_describe, [i.path for _, i in queue], chunksize=4), total=len(queue))
        )
    results: dict[str, list[tuple[data.Item, Attributes | None]]] = {name: [] for name in held}
    for (name, item), attributes in zip(queue, described, strict=True):
        results[name].append((item, attributes))
    lines = [f"Measured {machine()} by `python -m bench.attributes`.", "", *measure(results)]
    model = analyzer(threads=2)
    lines += [
        "",
        "### Occlusion",
        "",
        *occlusion_eval(model, held["utkface"][:400], results.pop("celeba_all")),
    ]
    lines += ["", "### Blur, illumination, completeness on controlled changes (UTKFace held-out)", ""]
    lines += degradations(model, held["utkface"][:150])
    print("\n".join(lines))
    if args.write_docs:
        write_section(DOCS, "attributes-results", lines)
    Path("/tmp/renlian-attributes-bench.json").write_text(json.dumps({"lines": lines}))


if __name__ == "__main__":
    main()
