"""Train v3 detect's eye_status, emotion, mask and spoofing heads; write the shipped weights.

    python -m training.v3fields.train [--cache /tmp/renlian-v3fields]

Features are the service's own (training/v3fields/data.py): the backbone's maps of the aligned crop and
of its mirror image, so every face trains twice (the mirror image is a real face too, and it brings the
other eye into the eye head's cell, which is how the service reads the second eye). Each head is a
ridge model with a calibration layer (training/attributes/linear.py), its ridge strength chosen on
5-fold out-of-fold scores, folds by group. The held-out part of every set (data.held_out) is never
read here; bench/v3fields.py measures the shipped file on it through the service.

| head | positives | negatives |
|---|---|---|
| eye (the cell under the image-left eye) | open: faces from six other folders | closed: CEW |
| emotion (pooled, 7 classes; the sets are grey) | FER-2013, CK+ (no contempt), JAFFE's training subjects | |
| mask (pooled) | masked web photos and crops | the set's unmasked photos, faces from other folders |
| spoofing.gan (pooled) | StyleGAN faces | FFHQ, the Photoshop set's real faces, faces from other folders |
| spoofing.edit (pooled) | Photoshop composites | its real faces, FFHQ, faces from other folders |

Output: renlian/models/weights/v3fields.npz (each head's matrix and bias, and a JSON "meta" with
labels, inputs and the out-of-fold figures) and those figures printed for the model card.
Deterministic: closed-form fits, fixed seeds.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from renlian.vision.backbone import pool
from renlian.vision.v3fields import EMOTIONS
from training.attributes import linear
from training.v3fields import data

WEIGHTS = Path(__file__).resolve().parents[2] / "renlian" / "models" / "weights" / "v3fields.npz"
SEED = 20261207
# The ArcFace template puts the image-left eye at (38, 52) of the 112 px crop: grid cell (3, 2) of the
# backbone's 16 px cells. The mirrored crop brings the other eye into that cell.
EYE_CELL = ((3, 2),)
# Folders whose faces are ordinary photos: open eyes (bar a few blinks), no mask, not synthetic.
# (A column and the value it must hold, where the folder has other images too.)
ORDINARY: dict[str, tuple[str, str] | None] = {
    "utkface": None,
    "amls1819_human_cartoon": ("class", "human"),
    "scut_fbp5500": None,
}
ORDINARY_PER_SET = 500  # training faces taken from each ordinary folder, so no one source dominates
UTKFACE_STEP = 4  # UTKFace is large; every fourth photo is extracted
# OCFR-2022 lower-face occluders laid on ordinary faces as more unmasked examples: a hand or a cup over
# the mouth is not a face mask. bench/v3fields.py tests on the other lower-face occluders.
MASK_NEGATIVE_OCCLUDERS = ("hand_1", "gloves_1", "mug_1", "cup_1", "cup_3", "cup_5", "book_1")
OCCLUDED_PER_SET = 150
CK_EMOTIONS = {
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "sadness": "sad",
    "surprise": "surprise",
}


def listed(name: str) -> tuple[str, list[data.Item]]:
    """A set's items as extracted, and the cache name they are kept under."""
    if name == "utkface":
        return f"utkface_every{UTKFACE_STEP}", data.items(name)[::UTKFACE_STEP]
    return name, data.items(name)


@dataclass
class Faces:
    """Training faces of one set where the detector found one: maps of the crop and of its mirror."""

    items: list[data.Item]
    maps: NDArray[np.float16]
    mirrored: NDArray[np.float16]

    @property
    def groups(self) -> NDArray[np.str_]:
        return np.array([item.group for item in self.items])

    def take(self, keep: NDArray[np.bool_]) -> Faces:
        return Faces(
            [item for item, k in zip(self.items, keep, strict=True) if k],
            self.maps[keep],
            self.mirrored[keep],
        )


def training_faces(name: str, cache: Path) -> Faces:
    """The training part of a set, where the detector found a face."""
    key, items = listed(name)
    extracted = data.extract(key, items, cache)
    keep = np.array(
        [bool(found) and not data.held_out(item) for item, found in zip(items, extracted.found, strict=True)]
    )
    return Faces(
        [item for item, k in zip(items, keep, strict=True) if k],
        extracted.maps[keep],
        extracted.mirrored[keep],
    )


def labelled(faces: Faces, column: str, value: str) -> Faces:
    return faces.take(np.array([item.labels[column] == value for item in faces.items]))


def sample(faces: Faces, count: int, rng: np.random.Generator) -> Faces:
    if len(faces.items) <= count:
        return faces
    keep = np.zeros(len(faces.items), bool)
    keep[rng.choice(len(faces.items), count, replace=False)] = True
    return faces.take(keep)


def pooled(maps: NDArray[np.float16]) -> NDArray[np.float32]:
    return np.stack([pool(m.astype(np.float32)) for m in maps])


def cells(maps: NDArray[np.float16], chosen: tuple[tuple[int, int], ...]) -> NDArray[np.float32]:
    rows, cols = zip(*chosen, strict=True)
    values: NDArray[np.float32] = maps[:, :, list(rows), list(cols)].astype(np.float32).mean(axis=2)
    return values


def both_ways(
    parts: list[tuple[Faces, int]], features: Any
) -> tuple[NDArray[np.float32], NDArray[np.int64], NDArray[np.str_]]:
    """Features of every face and of its mirror image, with class labels and groups."""
    x, y, groups = [], [], []
    for faces, label in parts:
        for maps in (faces.maps, faces.mirrored):
            x.append(features(maps))
            y.append(np.full(len(faces.items), label))
            groups.append(faces.groups)
    return np.vstack(x), np.concatenate(y), np.concatenate(groups)


def out_of_fold(name: str, fitted: linear.Fitted, truth: NDArray[np.int64]) -> dict[str, Any]:
    scores = fitted.out_of_fold
    figures: dict[str, Any] = {
        "accuracy": float(np.mean(scores.argmax(axis=1) == truth)),
        "ridge": fitted.ridge,
        "n": len(truth),
    }
    if scores.shape[1] == 2:
        figures["auc"] = auc(scores[:, 1] - scores[:, 0], truth == 1)
    print(f"{name}: {figures}", flush=True)
    return figures


def auc(scores: NDArray[Any], positive: NDArray[np.bool_]) -> float:
    ranks = np.argsort(np.argsort(scores)) + 1.0
    n_pos = int(positive.sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * (len(positive) - n_pos)))


def occluded(ordinary: list[Faces], cache: Path) -> Faces:
    """The first OCCLUDED_PER_SET faces of each ordinary sample again, each under one lower-face occluder
    (taken in turn), as the service would see them."""
    items = [item for faces in ordinary for item in faces.items[:OCCLUDED_PER_SET]]
    covers = [MASK_NEGATIVE_OCCLUDERS[k % len(MASK_NEGATIVE_OCCLUDERS)] for k in range(len(items))]
    extracted = data.extract("ordinary_occluded", items, cache, covers)
    keep = extracted.found
    return Faces(
        [item for item, k in zip(items, keep, strict=True) if k],
        extracted.maps[keep],
        extracted.mirrored[keep],
    )


def emotion_parts(cache: Path) -> dict[str, list[tuple[Faces, int]]]:
    parts: dict[str, list[tuple[Faces, int]]] = {}
    for name, column, names in (
        ("emotion_fer2013", "emotion", {e: e for e in EMOTIONS}),
        ("emotion_jaffe", "emotion", {e: e for e in EMOTIONS}),
        ("ck_plus_48", "expression", CK_EMOTIONS),
    ):
        faces = training_faces(name, cache)
        parts[name] = [
            (labelled(faces, column, label), EMOTIONS.index(emotion)) for label, emotion in names.items()
        ]
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/renlian-v3fields"))
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    fitted: dict[str, linear.Fitted] = {}
    labels: dict[str, list[str]] = {}
    inputs: dict[str, Any] = {}
    figures: dict[str, Any] = {}
    ordinary = [
        sample(
            labelled(training_faces(name, args.cache), *keep) if keep else training_faces(name, args.cache),
            ORDINARY_PER_SET,
            rng,
        )
        for name, keep in ORDINARY.items()
    ]

    # Eyes: CEW's closed faces against ordinary photos and the other sets' faces (masked, real, GAN
    # faces included: eyes are open in nearly all of them), one head per eye cell.
    cew = training_faces("eye_cew_closed_faces", args.cache)
    mask_set = training_faces("mask_chandrikadeb7_real", args.cache)
    ffhq = labelled(training_faces("spoof_stylegan_vs_ffhq_256", args.cache), "spoofing", "0")
    stylegan = labelled(training_faces("spoof_stylegan_vs_ffhq_256", args.cache), "spoofing", "1")
    photos = labelled(training_faces("spoof_ciplab_photoshop_160", args.cache), "spoofing", "0")
    edited = labelled(training_faces("spoof_ciplab_photoshop_160", args.cache), "spoofing", "1")
    open_eyes = [*ordinary, sample(mask_set, ORDINARY_PER_SET, rng), ffhq, photos]
    x, y, groups = both_ways([(cew, 0), *((faces, 1) for faces in open_eyes)], lambda m: cells(m, EYE_CELL))
    fitted["eye"] = linear.fit(x, y, groups, classes=2)
    labels["eye"], inputs["eye"] = ["closed", "open"], [list(cell) for cell in EYE_CELL]
    figures["eye"] = out_of_fold("eye", fitted["eye"], y)

    parts = emotion_parts(args.cache)
    x, y, groups = both_ways([part for name_parts in parts.values() for part in name_parts], pooled)
    fitted["emotion"] = linear.fit(x, y, groups, classes=len(EMOTIONS))
    labels["emotion"], inputs["emotion"] = list(EMOTIONS), "pooled"
    figures["emotion"] = out_of_fold("emotion", fitted["emotion"], y)

    # Mask: the set's two classes come from different sources, so ordinary faces from other folders
    # join the unmasked class: a head that learned the source would call them masked.
    masked, bare = labelled(mask_set, "mask", "1"), labelled(mask_set, "mask", "0")
    covered = occluded(ordinary, args.cache)
    x, y, groups = both_ways(
        [(masked, 1), (bare, 0), (covered, 0), *((faces, 0) for faces in ordinary)], pooled
    )
    fitted["mask"] = linear.fit(x, y, groups, classes=2)
    labels["mask"], inputs["mask"] = ["none", "mask"], "pooled"
    figures["mask"] = out_of_fold("mask", fitted["mask"], y)

    # Spoofing: one head per kind, each against every real face, so neither learns its set's source.
    reals = [ffhq, photos, *ordinary]
    for head, fakes in (("spoofing.gan", stylegan), ("spoofing.edit", edited)):
        x, y, groups = both_ways([(fakes, 1), *((faces, 0) for faces in reals)], pooled)
        fitted[head] = linear.fit(x, y, groups, classes=2)
        labels[head], inputs[head] = ["real", "synthetic"], "pooled"
        figures[head] = out_of_fold(head, fitted[head], y)

    meta = {"labels": labels, "inputs": inputs, "training_figures": figures}
    arrays = {f"{name}.weights": fit.weights for name, fit in fitted.items()}
    arrays.update({f"{name}.bias": fit.bias for name, fit in fitted.items()})
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(WEIGHTS, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
