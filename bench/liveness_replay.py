"""Liveness against prints and screen replays: APCER per attack kind, BPCER per live source.

    python -m bench.liveness_replay [--scores /tmp/liveness_scores.npz] [--write-docs]

Live faces: NUAA's live webcam frames, LFW, SCUT-FBP5500 and every 8th UTKFace photo (../shared/data).
Attacks: NUAA's printed photos, and screen replays synthesized from the live photos of NUAA, LFW and
SCUT-FBP5500 (training/liveness_replay/synth.py; one per NUAA live frame and per every 2nd LFW and
SCUT photo, phone and monitor alternately, seeded by position so a rerun draws the same frames).
The synthetic replays only stand in for real ones: what they measure is how the scores treat this
recipe, not every screen and camera.

Every image goes through the service's own detector (largest face); images where it finds no face
are counted and left out. Each model's score is then compared with every documented threshold:
liveness_control LOW / NORMAL / HIGH and the models' own decision point 0.5. APCER: attacks scored at
or above the threshold (accepted as live); BPCER: live faces scored below it (rejected).

Scores: `print` the NUAA-trained texture model (renlian/models/weights/liveness.npz, served before);
`minifas_v2`, `minifas_v1se` each MiniFASNet alone; `minifas` their mean (upstream's ensemble);
`fusion_min` the lower of `print` and `minifas`; `served` `minifas` calibrated, what the service
answers (renlian.vision.liveness.calibrated).
"""

from __future__ import annotations

import argparse
import csv
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from bench.datasets import DATA, machine, read_bgr, write_section
from renlian.core.controls import LIVENESS
from renlian.models.cache import ModelCache, verify_file
from renlian.models.registry import BUNDLED, MODELS
from renlian.models.runtime import configure_opencv
from renlian.settings import Settings
from renlian.vision.detector import YuNetDetector
from renlian.vision.faces import Face
from renlian.vision.image import BGRImage
from renlian.vision.liveness import (
    DEFAULT_THRESHOLD,
    MINIFAS_MODELS,
    LivenessScorer,
    MiniFasScorer,
    calibrated,
)
from training.liveness_replay.synth import KINDS, replay

DOCS = Path(__file__).resolve().parents[1] / "docs" / "liveness.md"
SEED = 20261207
LIVE_SOURCES = ("nuaa_live", "lfw", "scut_fbp5500", "utkface")
REPLAY_CONTENT = ("nuaa_live", "lfw", "scut_fbp5500")
ATTACKS = ("nuaa_print", *KINDS)
THRESHOLDS = (
    ("LOW", LIVENESS["LOW"]),
    ("NORMAL", LIVENESS["NORMAL"]),
    ("0.5", DEFAULT_THRESHOLD),
    ("HIGH", LIVENESS["HIGH"]),
)


@dataclass(frozen=True)
class Item:
    source: str  # a live source or an attack kind
    content: str  # where the pixels came from
    path: Path


def photos() -> Iterator[Item]:
    with (DATA / "nuaa" / "labels.csv").open() as handle:
        for row in csv.DictReader(handle):
            source = "nuaa_live" if row["label"] == "live" else "nuaa_print"
            yield Item(source, source, DATA / "nuaa" / row["file"])
    with (DATA / "lfw" / "labels.csv").open() as handle:
        for row in csv.DictReader(handle):
            yield Item("lfw", "lfw", DATA / "lfw" / row["image"])
    with (DATA / "scut_fbp5500" / "labels.csv").open() as handle:
        for row in csv.DictReader(handle):
            yield Item("scut_fbp5500", "scut_fbp5500", DATA / "scut_fbp5500" / row["image"])
    with (DATA / "utkface" / "labels.csv").open() as handle:
        for i, row in enumerate(csv.DictReader(handle)):
            if i % 8 == 0:
                yield Item("utkface", "utkface", DATA / "utkface" / "images" / row["file"])


def detector() -> YuNetDetector:
    settings = Settings()
    path = ModelCache(settings.model_cache()).ensure([MODELS["yunet"]])["yunet"]
    return YuNetDetector(
        path, max_side=settings.detect_max_side, score_threshold=settings.detect_score_threshold
    )


@dataclass
class Scores:
    source: NDArray[np.str_]
    content: NDArray[np.str_]
    columns: dict[str, NDArray[np.float64]]
    missed: dict[str, int]


def collect() -> Scores:
    configure_opencv(1)
    find = detector()
    printed = LivenessScorer(BUNDLED["liveness"].path, threads=1)
    paths = {name: verify_file(BUNDLED[name].path, BUNDLED[name].sha256, name) for name, _ in MINIFAS_MODELS}
    minifas = MiniFasScorer(paths, threads=1)
    scorers: dict[str, Callable[[BGRImage, Face], float]] = {
        "print": printed,
        **{name: minifas.single(i) for i, name in enumerate(("minifas_v2", "minifas_v1se"))},
    }
    sources: list[str] = []
    contents: list[str] = []
    columns: dict[str, list[float]] = {name: [] for name in scorers}
    missed: dict[str, int] = {}
    cost: dict[str, float] = {name: 0.0 for name in scorers}
    items = list(photos())
    for index, item in enumerate(tqdm(items, desc="liveness")):
        image = read_bgr(item.path)
        frames = [(item.source, image)]
        # Every NUAA live frame, and every 2nd LFW and SCUT photo (synthesis is the slow part).
        if item.source in REPLAY_CONTENT and (item.source == "nuaa_live" or index % 2 == 0):
            kind = (
                KINDS[(index // 2) % len(KINDS)] if item.source != "nuaa_live" else KINDS[index % len(KINDS)]
            )
            frames.append((kind, replay(image, np.random.default_rng((SEED, index)), kind)))
        for source, frame in frames:
            faces = find.detect(frame)
            if not faces:
                missed[source] = missed.get(source, 0) + 1
                continue
            sources.append(source)
            contents.append(item.content)
            for name, scorer in scorers.items():
                started = time.thread_time()
                columns[name].append(scorer(frame, faces[0]))
                cost[name] += time.thread_time() - started
    count = len(sources)
    print("CPU ms per face, 1 thread:", {name: round(1000 * c / count, 2) for name, c in cost.items()})
    return Scores(np.array(sources), np.array(contents), {k: np.array(v) for k, v in columns.items()}, missed)


def save(scores: Scores, path: Path) -> None:
    arrays: dict[str, NDArray[Any]] = {f"score_{k}": v for k, v in scores.columns.items()}
    arrays["source"], arrays["content"] = scores.source, scores.content
    arrays["missed"] = np.array(list(scores.missed.items()), dtype=str)
    np.savez_compressed(path, **arrays)  # type: ignore[arg-type]  # numpy types **kwds as its bool flag


def load(path: Path) -> Scores:
    with np.load(path) as data:
        columns = {k.removeprefix("score_"): data[k] for k in data.files if k.startswith("score_")}
        missed = {str(k): int(v) for k, v in data["missed"]} if data["missed"].size else {}
        return Scores(data["source"], data["content"], columns, missed)


def with_derived(scores: Scores) -> Scores:
    """The scores computed from the measured ones: the pair's mean (upstream's ensemble), its
    calibrated form (what the service answers), and the fusion tried with the print model."""
    columns = dict(scores.columns)
    columns["minifas"] = (columns["minifas_v2"] + columns["minifas_v1se"]) / 2
    columns["fusion_min"] = np.minimum(columns["print"], columns["minifas"])
    columns["served"] = np.array([calibrated(float(raw)) for raw in columns["minifas"]])
    return Scores(scores.source, scores.content, columns, scores.missed)


def fit_calibration(live: NDArray[np.float64]) -> tuple[tuple[float, float], ...]:
    """Knots for renlian.vision.liveness.CALIBRATION from the raw scores of NUAA's live frames (the one
    live source here filmed by a camera, as a gate's frames are): Baidu names HIGH, NORMAL and LOW by
    the false-reject rate they allow (frr_1e-2, 1e-3, 1e-4), so HIGH goes to the raw score's 1st
    percentile and NORMAL to its lowest frame (253 frames cannot resolve 1e-3). LOW stays at raw 0.05,
    below them both: 1e-4 cannot be measured here."""
    live = np.sort(live)
    # Rounded down to the 4 decimals the knots are written with, so no frame falls below its own knot.
    high = float(np.floor(np.quantile(live, 0.01) * 1e4) / 1e4)
    normal = float(np.floor(live[0] * 1e4) / 1e4)
    low = min(LIVENESS["LOW"], normal / 2)
    return (
        (0.0, 0.0),
        (low, LIVENESS["LOW"]),
        (normal, LIVENESS["NORMAL"]),
        (high, LIVENESS["HIGH"]),
        (1.0, 1.0),
    )


def nuaa_live_subjects() -> NDArray[np.str_]:
    """The subject of each NUAA live frame, in the order `photos()` yields them."""
    with (DATA / "nuaa" / "labels.csv").open() as handle:
        return np.array([row["subject"] for row in csv.DictReader(handle) if row["label"] == "live"])


def calibration_out_of_sample(scores: Scores) -> str:
    """NUAA's live BPCER at HIGH and NORMAL with the knots refitted leaving each subject out in turn:
    the figure the in-sample calibration cannot give."""
    live = scores.columns["minifas"][scores.source == "nuaa_live"]
    subjects = nuaa_live_subjects()
    if len(subjects) != len(live):  # a frame without a detected face would shift the subjects
        return "calibration out of sample: not measured (a NUAA live frame had no detected face)"
    rejected = {"HIGH": 0, "NORMAL": 0}
    for subject in np.unique(subjects):
        knots = dict((served, raw) for raw, served in fit_calibration(live[subjects != subject]))
        for level in rejected:
            rejected[level] += int((live[subjects == subject] < knots[LIVENESS[level]]).sum())
    rates = ", ".join(f"{level} {100 * n / len(live):.1f}%" for level, n in rejected.items())
    return (
        f"Calibration out of sample (knots refitted leaving each NUAA subject out): NUAA live BPCER {rates}."
    )


def learned_fusion(scores: Scores) -> str:
    """Candidate b': a class-balanced logistic regression over the two models' logits and their
    product, fitted on SCUT-FBP5500 and UTKFace photos and SCUT-FBP5500's replays only, and compared
    with the plain mean on the other sources at the threshold rejecting 5% of NUAA's live frames."""

    def logit(p: NDArray[np.float64]) -> NDArray[np.float64]:
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.asarray(np.log(p / (1 - p)))

    a, b = logit(scores.columns["minifas_v2"]), logit(scores.columns["minifas_v1se"])
    x = np.stack([a, b, a * b], axis=1)
    live = np.isin(scores.source, LIVE_SOURCES).astype(np.float64)
    train = np.isin(scores.content, ("scut_fbp5500", "utkface"))
    x = (x - x[train].mean(axis=0)) / x[train].std(axis=0)
    weight = np.where(live[train] == 1, 0.5 / live[train].mean(), 0.5 / (1 - live[train].mean()))
    w, bias = np.zeros(x.shape[1]), 0.0
    for _ in range(2000):  # gradient descent on the weighted log-loss, a light ridge
        error = (1 / (1 + np.exp(-(x[train] @ w + bias))) - live[train]) * weight
        w -= 0.1 * (x[train].T @ error / len(error) + 1e-3 * w)
        bias -= 0.1 * float(error.mean())
    held_out = ~train
    parts = []
    for name, values in (("fitted", x @ w + bias), ("mean", scores.columns["minifas"])):
        threshold = np.quantile(values[scores.source == "nuaa_live"], 0.05)
        accepted = {
            kind: float((values[held_out & (scores.source == kind)] >= threshold).mean()) for kind in KINDS
        }
        cells = [f"{kind} APCER {100 * rate:.1f}%" for kind, rate in accepted.items()]
        lfw = 100 * float((values[scores.source == "lfw"] < threshold).mean())
        parts.append(f"{name}: {', '.join(cells)}, LFW BPCER {lfw:.1f}%")
    return (
        "Candidate b' (logistic regression over both models' logits, fitted on SCUT-FBP5500/UTKFace "
        "photos and SCUT-FBP5500's replays; replays of NUAA and LFW photos only; threshold at 5% NUAA "
        f"live BPCER): {'; '.join(parts)}."
    )


def rate(values: NDArray[np.bool_]) -> str:
    return f"{100 * values.mean():.1f}%" if values.size else "-"


def table(scores: Scores, column: str) -> list[str]:
    """APCER per attack kind and BPCER per live source at every documented threshold, for one score."""
    values = scores.columns[column]
    kinds = [k for k in ATTACKS if (scores.source == k).any()]
    lives = [s for s in LIVE_SOURCES if (scores.source == s).any()]
    head = ["threshold", *(f"APCER {k}" for k in kinds), *(f"BPCER {s}" for s in lives)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" + "---:|" * (len(head) - 1)]
    for label, threshold in THRESHOLDS:
        cells = [f"{label} ({threshold:g})"]
        cells += [rate(values[scores.source == k] >= threshold) for k in kinds]
        cells += [rate(values[scores.source == s] < threshold) for s in lives]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def at_bpcer(scores: Scores, column: str, lives: tuple[str, ...], target: float = 0.05) -> str:
    """The APCER per attack kind at the highest threshold whose BPCER is at most `target` on each of
    `lives`: the issue's independent target is replay APCER <= 5% at BPCER <= 5%."""
    values = scores.columns[column]
    best = None
    for threshold in np.unique(values)[::-1]:
        if max(float((values[scores.source == s] < threshold).mean()) for s in lives) <= target:
            best = float(threshold)
            break
    if best is None:
        return f"no threshold keeps BPCER <= {100 * target:g}% on {', '.join(lives)}"
    kinds = ", ".join(
        f"{kind} {100 * float((values[scores.source == kind] >= best).mean()):.1f}%" for kind in ATTACKS
    )
    return f"BPCER <= {100 * target:g}% on {' and '.join(lives)}: threshold {best:.4g}, APCER {kinds}"


def counts(scores: Scores) -> str:
    parts = [f"{s} {int((scores.source == s).sum())}" for s in (*LIVE_SOURCES, *ATTACKS)]
    missed = ", ".join(f"{k} {v}" for k, v in sorted(scores.missed.items())) or "none"
    return f"Faces scored: {', '.join(parts)}. No face found (left out): {missed}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scores", type=Path, help="keep the scores here between runs (outside the repository)"
    )
    parser.add_argument("--write-docs", action="store_true")
    parser.add_argument("--fit-calibration", action="store_true", help="print CALIBRATION's knots")
    args = parser.parse_args()
    if args.scores is not None and args.scores.exists():
        scores = load(args.scores)
    else:
        scores = collect()
        if args.scores is not None:
            save(scores, args.scores)
    scores = with_derived(scores)
    if args.fit_calibration:
        knots = fit_calibration(scores.columns["minifas"][scores.source == "nuaa_live"])
        print("CALIBRATION =", tuple((round(raw, 4), served) for raw, served in knots))
    lines = [f"Report of {machine()} by `python -m bench.liveness_replay`.", "", counts(scores), ""]
    lines += [calibration_out_of_sample(scores), "", learned_fusion(scores), ""]
    for column in scores.columns:
        lines += [f"**{column}**", "", *table(scores, column), ""]
        for lives in (("nuaa_live",), ("nuaa_live", "lfw"), LIVE_SOURCES):
            lines += [f"- {at_bpcer(scores, column, lives)}"]
        lines.append("")
    print("\n".join(lines))
    if args.write_docs:
        write_section(DOCS, "liveness-replay-results", lines)


if __name__ == "__main__":
    main()
