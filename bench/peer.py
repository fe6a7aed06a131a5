"""renlian against dlib's face_recognition, on the same images in one run: speed and verification accuracy.

The peer is not a project dependency. Install it into the project's environment with:

    pip install dlib-bin face_recognition_models
    pip install --no-deps face_recognition

(`face_recognition` declares a dependency on the source `dlib` package, which would compile dlib from
source; `dlib-bin` is the same library as a prebuilt wheel, hence `--no-deps`. `pip check` then reports
the missing `dlib` distribution; that is expected.) Then, from the repository root:

    python -m bench.peer

Protocol, identical for every system:
- Images: the three identity sets, at most --images-per-identity per identity (default 30, drawn with
  numpy default_rng(0); only celeb_aligned112 has more), so the run stays under ten minutes on 2 cores.
- Tight crops (celeb_aligned112, orl_faces) get a black border of 25% of the longer side on every
  side before detection: dlib's HOG detector misses faces that touch the frame. yale_faces already
  shows background and is not padded. Both systems see the same padded pixels.
- Per image and system: detect, take the largest face, embed; timed end to end from decoded pixels
  (padding included), one thread each. renlian: `FaceAnalyzer.embed_largest` (YuNet, 5-point
  alignment, mbf or sface). dlib: `face_locations(model="hog")` then `face_encodings` with its defaults
  (5-point model, 1 jitter). The systems take turns image by image so that load from other processes
  falls on all of them alike.
- Pairs per set (default_rng(0)): every genuine pair, at most --genuine-per-identity per identity, and as
  many impostor pairs drawn from all different-identity pairs. Accuracy is over the pairs in which
  every system found a face in both images, so all systems answer the same questions; misses are
  counted separately, and a second figure scores a pair with a miss as "different".
- Similarity: cosine for renlian, minus the Euclidean distance for dlib (its native metric). The
  threshold is chosen by 10-fold cross-validation per system: picked on nine folds, applied to the
  tenth. "overall" pools the pairs of all sets under one threshold, as a deployed service would.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from importlib import metadata
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from bench.datasets import IDENTITY_SETS, Sample, analyzer, identity_set, machine, read_bgr
from renlian.errors import FaceApiError
from renlian.vision.image import BGRImage

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks_peer.md"
INSTALL = "pip install dlib-bin face_recognition_models && pip install --no-deps face_recognition"
COMMAND = "python -m bench.peer"
FOLDS = 10
SEED = 0
# Sets whose images are face crops with no margin; see the module docstring.
PADDED_SETS = frozenset({"celeb_aligned112", "orl_faces"})
PAD_FRACTION = 0.25
# dlib's documented match tolerance, for a sanity check against its published behaviour.
DLIB_TOLERANCE = 0.6

Vectors = NDArray[np.float64]


@dataclass
class System:
    name: str
    # Padded BGR pixels -> embedding of the largest face, or None when no face is found.
    embed: Callable[[BGRImage], NDArray[Any] | None]
    metric: str  # "cosine" or "euclidean"


@dataclass
class Run:
    """One system's results on one set: an embedding row per image (NaN on a miss) and timings."""

    vectors: list[NDArray[Any] | None] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)

    @property
    def misses(self) -> int:
        return sum(vector is None for vector in self.vectors)

    def matrix(self) -> Vectors:
        width = next((len(vector) for vector in self.vectors if vector is not None), 1)
        rows = [np.full(width, np.nan) if vector is None else vector for vector in self.vectors]
        return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class Pairs:
    left: NDArray[np.intp]
    right: NDArray[np.intp]
    same: NDArray[np.bool_]


def renlian_system(recognizer: str) -> System:
    face_analyzer = analyzer(recognizer, threads=1)

    def embed(bgr: BGRImage) -> NDArray[Any] | None:
        try:
            return face_analyzer.embed_largest(bgr)
        except FaceApiError:
            return None

    return System(f"renlian {recognizer}", embed, "cosine")


def dlib_system() -> System:
    # The protocol runs every system on one thread. dlib-bin links no BLAS or OpenMP today, so this only
    # guards a future build that does; such libraries read these once, when they load.
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = "1"
    try:
        import dlib
        import face_recognition
    except ImportError as error:
        raise SystemExit(f"the peer is not installed ({error}); run: {INSTALL}") from error

    def embed(bgr: BGRImage) -> NDArray[Any] | None:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        boxes = face_recognition.face_locations(rgb, model="hog")
        if not boxes:
            return None
        # face_locations gives (top, right, bottom, left); renlian keeps the largest face, so does this.
        largest = max(boxes, key=lambda box: (box[2] - box[0]) * (box[1] - box[3]))
        encoding: NDArray[Any] = face_recognition.face_encodings(rgb, [largest])[0]
        return encoding

    return System(f"dlib {dlib.__version__} hog", embed, "euclidean")


def subsample(samples: list[Sample], per_identity: int, rng: np.random.Generator) -> list[Sample]:
    by_identity: dict[str, list[Sample]] = {}
    for sample in sorted(samples, key=lambda sample: str(sample.path)):
        by_identity.setdefault(sample.identity, []).append(sample)
    kept: list[Sample] = []
    for identity in sorted(by_identity):
        group = by_identity[identity]
        if per_identity and len(group) > per_identity:
            picks = np.sort(rng.choice(len(group), per_identity, replace=False))
            group = [group[index] for index in picks]
        kept.extend(group)
    return kept


def make_pairs(identities: Sequence[str], genuine_cap: int, rng: np.random.Generator) -> Pairs:
    labels = np.asarray(identities)
    genuine: list[tuple[int, int]] = []
    for identity in sorted(set(identities)):
        members = np.flatnonzero(labels == identity)
        candidates = list(itertools.combinations(members.tolist(), 2))
        if genuine_cap and len(candidates) > genuine_cap:
            candidates = [
                candidates[i] for i in np.sort(rng.choice(len(candidates), genuine_cap, replace=False))
            ]
        genuine.extend(candidates)
    left, right = np.triu_indices(len(labels), k=1)
    different = labels[left] != labels[right]
    impostor = rng.choice(np.flatnonzero(different), len(genuine), replace=False)
    return Pairs(
        left=np.concatenate([np.array([a for a, _ in genuine], dtype=np.intp), left[np.sort(impostor)]]),
        right=np.concatenate([np.array([b for _, b in genuine], dtype=np.intp), right[np.sort(impostor)]]),
        same=np.concatenate([np.ones(len(genuine), bool), np.zeros(len(impostor), bool)]),
    )


def similarities(vectors: Vectors, pairs: Pairs, metric: str) -> NDArray[np.float64]:
    """Larger means more alike; NaN where either image had no face."""
    a, b = vectors[pairs.left], vectors[pairs.right]
    # Both renlian embedders are L2-normalised, so the dot product is the cosine.
    values: NDArray[np.float64] = (
        np.sum(a * b, axis=1) if metric == "cosine" else -np.linalg.norm(a - b, axis=1)
    )
    return values


def best_threshold(scores: NDArray[np.float64], same: NDArray[np.bool_]) -> float:
    """The cut that classifies the most pairs right, "same" meaning score >= cut; -inf scores stay below."""
    order = np.argsort(scores, kind="stable")
    ordered, labels = scores[order], same[order]
    # Cutting before position k calls positions k.. "same": right are the genuine pairs at or after k
    # and the impostors before k.
    genuine_after = np.concatenate([np.cumsum(labels[::-1])[::-1], [0]])
    impostor_before = np.concatenate([[0], np.cumsum(~labels)])
    correct = genuine_after + impostor_before
    # Only cut between distinct scores, or tied pairs would land on both sides.
    valid = np.ones(len(ordered) + 1, bool)
    valid[1:-1] = ordered[1:] != ordered[:-1]
    k = int(np.argmax(np.where(valid, correct, -1)))
    if k == len(ordered):
        return float("inf")
    if k == 0 or not np.isfinite(ordered[k - 1]):
        return float(ordered[k])
    return float((ordered[k - 1] + ordered[k]) / 2)


def cross_validated(scores: NDArray[np.float64], same: NDArray[np.bool_]) -> tuple[float, float]:
    """Accuracy over all pairs and its standard deviation across folds, threshold fitted out of fold."""
    folds = np.random.default_rng(SEED).permutation(len(scores)) % FOLDS
    accuracies, correct = [], 0
    for fold in range(FOLDS):
        test = folds == fold
        cut = best_threshold(scores[~test], same[~test])
        hits = int(np.sum((scores[test] >= cut) == same[test]))
        correct += hits
        accuracies.append(hits / max(1, int(test.sum())))
    return correct / len(scores), float(np.std(accuracies))


def pad(bgr: BGRImage, set_name: str) -> BGRImage:
    if set_name not in PADDED_SETS:
        return bgr
    border = round(PAD_FRACTION * max(bgr.shape[:2]))
    return cv2.copyMakeBorder(bgr, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))


def measure(systems: list[System], set_name: str, samples: list[Sample]) -> list[Run]:
    runs = [Run() for _ in systems]
    for index, sample in enumerate(samples):
        decoded = read_bgr(sample.path)
        # Rotate who goes first so that no system always gets warm caches or a quiet machine.
        for offset in range(len(systems)):
            slot = (index + offset) % len(systems)
            wall, cpu = time.perf_counter(), time.process_time()
            vector = systems[slot].embed(pad(decoded, set_name))
            runs[slot].wall_ms.append(1000 * (time.perf_counter() - wall))
            runs[slot].cpu_ms.append(1000 * (time.process_time() - cpu))
            runs[slot].vectors.append(None if vector is None else np.asarray(vector, dtype=np.float64))
        if (index + 1) % 100 == 0:
            print(f"  {set_name}: {index + 1}/{len(samples)} images", flush=True)
    return runs


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def accuracy_cell(scores: NDArray[np.float64], same: NDArray[np.bool_]) -> str:
    accuracy, spread = cross_validated(scores, same)
    return f"{100 * accuracy:.2f} ± {100 * spread:.2f}"


def report(
    systems: list[System], sets: dict[str, list[Sample]], runs: dict[str, list[Run]], pairs: dict[str, Pairs]
) -> list[str]:
    names = list(sets)
    # scores[name][slot]: one similarity per pair of the set, NaN where that system missed a face.
    scores = {
        name: [
            similarities(run.matrix(), pairs[name], system.metric)
            for system, run in zip(systems, runs[name], strict=True)
        ]
        for name in names
    }
    # The pairs every system could score: the same questions for all, so accuracies compare.
    common = {name: np.all([np.isfinite(each) for each in scores[name]], axis=0) for name in names}
    same = {name: pairs[name].same for name in names}

    def pooled(slot: int, *, only_common: bool) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        keep = {name: common[name] if only_common else slice(None) for name in names}
        values = np.concatenate([scores[name][slot][keep[name]] for name in names])
        # A pair with a missed face sorts below every cut: the system answers "different".
        return np.nan_to_num(values, nan=-np.inf), np.concatenate([same[name][keep[name]] for name in names])

    lines = table(
        ["set", "images", "genuine pairs", "impostor pairs", "pairs every system scored"],
        [
            [
                name,
                str(len(sets[name])),
                str(int(same[name].sum())),
                str(int((~same[name]).sum())),
                str(int(common[name].sum())),
            ]
            for name in names
        ],
    )
    lines += [
        "",
        "Verification accuracy, % (± std across the 10 folds), threshold fitted out of fold, on the pairs "
        "every system scored; the last column takes every pair and scores one with a missed face as "
        '"different".',
        "",
    ]
    lines += table(
        ["system", *names, "overall", "overall, misses as different"],
        [
            [
                system.name,
                *(
                    accuracy_cell(scores[name][slot][common[name]], same[name][common[name]])
                    for name in names
                ),
                accuracy_cell(*pooled(slot, only_common=True)),
                accuracy_cell(*pooled(slot, only_common=False)),
            ]
            for slot, system in enumerate(systems)
        ],
    )
    lines += [
        "",
        "Detect + embed of the largest face, one thread: mean wall-clock ms per image, per set and over all "
        "images; CPU ms is the process CPU time per image, which other load on the machine inflates less. "
        "Misses: images in which the system found no face.",
        "",
    ]
    rows = []
    for slot, system in enumerate(systems):
        wall = np.concatenate([runs[name][slot].wall_ms for name in names])
        cpu = np.concatenate([runs[name][slot].cpu_ms for name in names])
        rows.append(
            [
                system.name,
                *(f"{np.mean(runs[name][slot].wall_ms):.1f}" for name in names),
                f"{np.mean(wall):.1f}",
                f"{np.mean(cpu):.1f}",
                *(f"{runs[name][slot].misses}/{len(sets[name])}" for name in names),
            ]
        )
    lines += table(
        [
            "system",
            *(f"ms {name}" for name in names),
            "ms all",
            "CPU ms all",
            *(f"misses {name}" for name in names),
        ],
        rows,
    )

    for slot, system in enumerate(systems):
        if system.metric == "euclidean":
            values, truth = pooled(slot, only_common=True)
            fixed = float(np.mean((values >= -DLIB_TOLERANCE) == truth))
            lines += [
                "",
                f"For reference, {system.name} at its documented tolerance {DLIB_TOLERANCE} (nothing fitted) "
                f"gets {100 * fixed:.2f}% on the same pooled pairs.",
            ]
    return lines


def write_doc(lines: list[str], command: str, where: str, args: argparse.Namespace, versions: str) -> None:
    text = [
        "# Peer comparison: renlian against dlib face_recognition",
        "",
        f"Generated by `bench/peer.py` on {date.today().isoformat()}; its docstring gives the full protocol.",
        "",
        f"Machine: {where}.",
        "",
        f"Versions: {versions}.",
        "",
        "Reproduce, from the repository root (the peer is not a project dependency; `--no-deps` keeps pip "
        "from building the source `dlib` package that `face_recognition` declares):",
        "",
        "```",
        "pip install dlib-bin face_recognition_models",
        "pip install --no-deps face_recognition",
        command,
        "```",
        "",
        "Protocol in short: celeb_aligned112, orl_faces and yale_faces from ../shared/data; at most "
        f"{args.images_per_identity or 'all'} images per identity (numpy default_rng({SEED})); "
        f"{' and '.join(sorted(PADDED_SETS))} padded with a black border of {PAD_FRACTION:.0%} of the longer "
        "side, for both systems; every genuine pair up to "
        f"{args.genuine_per_identity or 'all'} per identity plus as many random impostor pairs; threshold "
        "by 10-fold cross-validation for each system separately; cosine similarity for renlian, Euclidean "
        "distance for dlib. dlib runs its HOG detector and `face_encodings` with its defaults (5-point "
        "landmarks, 1 jitter).",
        "",
        *lines,
        "",
    ]
    DOC.write_text("\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images-per-identity", type=int, default=30, help="cap per identity; 0: all")
    parser.add_argument("--genuine-per-identity", type=int, default=100, help="genuine pair cap; 0: all")
    parser.add_argument("--no-doc", action="store_true", help=f"print only; leave {DOC.name} alone")
    args = parser.parse_args()
    if args.images_per_identity == 1 or min(args.images_per_identity, args.genuine_per_identity) < 0:
        parser.error("a pair needs two images per identity: use 0 (no cap) or at least 2")
    command = COMMAND
    if (args.images_per_identity, args.genuine_per_identity) != (30, 100):
        command += f" --images-per-identity {args.images_per_identity}"
        command += f" --genuine-per-identity {args.genuine_per_identity}"

    # Taken before measuring: the commit is the code that runs, even if HEAD moves during the run.
    where = machine()
    systems = [renlian_system("mbf"), renlian_system("sface"), dlib_system()]
    sets: dict[str, list[Sample]] = {}
    pairs: dict[str, Pairs] = {}
    for name in IDENTITY_SETS:
        # One generator per set, so that a set's draw does not depend on the sets before it.
        rng = np.random.default_rng(SEED)
        sets[name] = subsample(identity_set(name), args.images_per_identity, rng)
        pairs[name] = make_pairs([sample.identity for sample in sets[name]], args.genuine_per_identity, rng)

    # First calls allocate buffers and sessions; keep that out of the timed loop.
    first = pad(read_bgr(sets[IDENTITY_SETS[0]][0].path), IDENTITY_SETS[0])
    for system in systems:
        for _ in range(2):
            system.embed(first)

    runs: dict[str, list[Run]] = {}
    started = time.perf_counter()
    for name in IDENTITY_SETS:
        print(f"{name}: {len(sets[name])} images", flush=True)
        runs[name] = measure(systems, name, sets[name])
    print(f"measured in {time.perf_counter() - started:.0f} s\n")

    lines = report(systems, sets, runs, pairs)
    print("\n".join(lines))
    packages = (
        "renlian",
        "onnxruntime",
        "opencv-python-headless",
        "dlib-bin",
        "face_recognition",
        "face_recognition_models",
    )
    versions = ", ".join(f"{package} {metadata.version(package)}" for package in packages)
    if not args.no_doc:
        write_doc(lines, command, where, args, versions)
        print(f"\nwrote {DOC}")


if __name__ == "__main__":
    main()
