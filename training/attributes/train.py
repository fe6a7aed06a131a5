"""Train every attribute head on the training part of ../shared/data; write the shipped weights.

    python -m training.attributes.train [--cache /tmp/renlian-attributes]

Features are the service's own (training/attributes/data.py). Each head is a ridge model with a
calibration layer (linear.py), its ridge strength chosen on 5-fold out-of-fold scores, folds by
subject where a set names subjects. The held-out fifth of every set (data.held_out) is never read
here; bench/attributes.py measures the shipped file on it through the service.

Output: renlian/models/weights/attributes.npz (every head's matrix and bias, and a JSON "meta" with
labels, occlusion cells and the rule constants) and the out-of-fold figures printed for the model
card. Deterministic: closed-form fits, fixed seeds for the synthetic occlusions.
"""

from __future__ import annotations

import argparse
import json
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from renlian.vision.attributes import OCCLUSION_REGIONS, jaw_to_temple, mouth_opening
from renlian.vision.backbone import pool
from renlian.vision.image import BGRImage
from renlian.vision.measures import INNER_FACE
from training.attributes import data, linear
from training.attributes.occlusion import (
    HELD_OUT_OCCLUDERS,
    REGION_CELLS,
    occluders,
    overlay,
    random_shape,
)

WEIGHTS = Path(__file__).resolve().parents[2] / "renlian" / "models" / "weights" / "attributes.npz"
SEED = 20261126
RACES = ("white", "black", "asian", "indian", "others")
FACESHAPES = ("heart", "oblong", "oval", "round", "square")
GLASSES = ("none", "ordinary", "sunglasses")
SYNTHETIC_SUNGLASSES = 300  # UTKFace training crops given OCFR sunglasses for the glasses head
OCCLUDED_CROPS = 2400  # synthetic occlusions for the occlusion heads (plus as many clean crops)
EXTRA_HUMANS = 200  # UTKFace crops added to the human class of the face-type head
TRIANGLE_PERCENTILE = 95.0
BLUR_REFERENCE_SIGMA = 1.5  # px at the crop's 112 px scale: the Gaussian blur that scores 0.5
RULES: dict[str, Any] = {
    # A smile counts as a laugh once the lips part as far as in the median posed CK+ "happy" peak of the
    # training subjects (laugh_opening, set below); docs/attributes.md checks it on held-out subjects.
    "laugh_softness": 0.02,
    # No set labels triangular faces. A face counts as triangular when its jaw is wide for its temples:
    # jaw / temple width above the 95th percentile of the Face Shape training faces (set below).
    "triangle_softness": 0.01,
    "age_range": [1.0, 100.0],
}


class Split:
    """One set's training rows where the detector found a face."""

    def __init__(self, name: str, cache: Path, keep: Any = None) -> None:
        listed, extracted = data.extract(name, cache)
        mask = np.array(
            [
                found and not data.held_out(item.group) and (keep is None or keep(item.labels))
                for item, found in zip(listed, extracted.found, strict=True)
            ]
        )
        index = np.flatnonzero(mask)
        self.items = [listed[i] for i in index]
        self.pooled = extracted.pooled[index]
        self.crops = extracted.crops[index]
        self.landmarks = extracted.landmarks[index]
        self.groups = np.array([item.group for item in self.items])

    def column(self, name: str) -> list[str]:
        return [item.labels[name] for item in self.items]


def report(
    name: str, fitted: linear.Fitted, truth: NDArray[Any], classes: tuple[str, ...] | None
) -> dict[str, Any]:
    if classes is None:
        predicted = fitted.out_of_fold[:, 0]
        figures = {
            "mae": float(np.mean(np.abs(predicted - truth))),
            "pearson": float(np.corrcoef(predicted, truth)[0, 1]),
        }
    else:
        predicted_class = fitted.out_of_fold.argmax(axis=1)
        figures = {"accuracy": float(np.mean(predicted_class == truth))}
    figures["ridge"] = fitted.ridge
    figures["n"] = len(truth)
    print(f"{name}: {figures}", flush=True)
    return figures


_backbone: Any = None


def _init_backbone() -> None:
    global _backbone
    _backbone = data.Extractor().backbone


def _maps(crop: BGRImage) -> NDArray[np.float32]:
    return _backbone(crop).maps  # type: ignore[no-any-return]


def backbone_maps(crops: list[BGRImage], desc: str) -> NDArray[np.float32]:
    # Spawned, not forked: a fork after numpy's BLAS threads have run can leave the workers deadlocked.
    with get_context("spawn").Pool(2, initializer=_init_backbone) as pool:
        return np.stack(list(tqdm(pool.imap(_maps, crops, chunksize=8), total=len(crops), desc=desc)))


def pooled_of(maps: NDArray[np.float32]) -> NDArray[np.float32]:
    return np.stack([pool(m) for m in maps])


def blur_midpoint(crops: NDArray[np.uint8]) -> float:
    """Median contrast-normalised Laplacian variance of faces blurred by BLUR_REFERENCE_SIGMA."""
    values = []
    for crop in crops[:1000]:
        grey = cv2.cvtColor(cv2.GaussianBlur(crop, (0, 0), BLUR_REFERENCE_SIGMA), cv2.COLOR_BGR2GRAY)
        inner = grey[INNER_FACE].astype(np.float32)
        values.append(float(cv2.Laplacian((inner - inner.mean()) / (inner.std() + 1e-6), cv2.CV_32F).var()))
    return float(np.median(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/renlian-attributes"))
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    heads: dict[str, linear.Fitted] = {}
    labels: dict[str, list[str]] = {}
    figures: dict[str, Any] = {}

    utk = Split("utkface", args.cache)
    gender = np.array([0 if g == "female" else 1 for g in utk.column("gender")])
    heads["gender"] = linear.fit(utk.pooled, gender, utk.groups, classes=2)
    labels["gender"] = ["female", "male"]
    figures["gender"] = report("gender", heads["gender"], gender, ("female", "male"))
    race = np.array([RACES.index(r) for r in utk.column("race")])
    heads["race"] = linear.fit(utk.pooled, race, utk.groups, classes=len(RACES))
    labels["race"] = list(RACES)
    figures["race"] = report("race", heads["race"], race, RACES)
    age = np.array([float(a) for a in utk.column("age")])
    heads["age"] = linear.fit(utk.pooled, age, utk.groups, classes=None)
    labels["age"] = ["years"]
    figures["age"] = report("age", heads["age"], age, None)

    genki = Split("genki4k", args.cache)
    celeba = Split("amls1819_human_cartoon", args.cache, keep=lambda row: row["class"] == "human")
    smile_x = np.vstack([genki.pooled, celeba.pooled])
    smile_y = np.array([int(s) for s in genki.column("smile") + celeba.column("smiling")])
    heads["smile"] = linear.fit(smile_x, smile_y, np.concatenate([genki.groups, celeba.groups]), classes=2)
    labels["smile"] = ["none", "smile"]
    figures["smile"] = report("smile", heads["smile"], smile_y, ("none", "smile"))

    scut = Split("scut_fbp5500", args.cache)
    beauty = np.array([float(b) for b in scut.column("beauty_0to100")])
    heads["beauty"] = linear.fit(scut.pooled, beauty, scut.groups, classes=None)
    labels["beauty"] = ["score"]
    figures["beauty"] = report("beauty", heads["beauty"], beauty, None)

    shapes = Split("faceshape_niten19", args.cache)
    shape = np.array([FACESHAPES.index(s) for s in shapes.column("face_shape")])
    heads["faceshape"] = linear.fit(shapes.pooled, shape, shapes.groups, classes=len(FACESHAPES))
    labels["faceshape"] = list(FACESHAPES)
    figures["faceshape"] = report("faceshape", heads["faceshape"], shape, FACESHAPES)

    # Glasses: real photos, plus OCFR sunglasses (training occluders only) on UTKFace crops.
    nuaa, yale = Split("nuaa", args.cache), Split("yale_faces", args.cache)
    sets = [
        (celeba, [GLASSES.index(g) if g else -1 for g in celeba.column("glasses_type")]),
        (nuaa, [int(g) for g in nuaa.column("glasses")]),
        (yale, [int(g) if g else -1 for g in yale.column("glasses(1/0 where stated)")]),
    ]
    shades = [o for o in occluders() if o.name.startswith("sunglasses") and o.name not in HELD_OUT_OCCLUDERS]
    picks = rng.choice(len(utk.crops), SYNTHETIC_SUNGLASSES, replace=False)
    synthetic = [overlay(utk.crops[i], shades[k % len(shades)], rng)[0] for k, i in enumerate(picks)]
    synthetic_pooled = pooled_of(backbone_maps(synthetic, "synthetic sunglasses"))
    glasses_x = [synthetic_pooled]
    glasses_y = [np.full(len(synthetic), 2)]
    glasses_groups = [np.array([f"synthetic:{utk.groups[i]}" for i in picks])]
    for split, values in sets:
        chosen = np.array(values) >= 0
        glasses_x.append(split.pooled[chosen])
        glasses_y.append(np.array(values)[chosen])
        glasses_groups.append(split.groups[chosen])
    gy = np.concatenate(glasses_y)
    heads["glasses"] = linear.fit(np.vstack(glasses_x), gy, np.concatenate(glasses_groups), classes=3)
    labels["glasses"] = list(GLASSES)
    figures["glasses"] = report("glasses (incl. synthetic)", heads["glasses"], gy, GLASSES)

    # Face type: CelebA humans and Google cartoons, with some UTKFace faces for variety of photos.
    kinds = Split("amls1819_human_cartoon", args.cache, keep=lambda row: row["class"] != "noise_nonface")
    extra = rng.choice(len(utk.pooled), EXTRA_HUMANS, replace=False)
    type_x = np.vstack([kinds.pooled, utk.pooled[extra]])
    type_y = np.concatenate(
        [[1 if c == "cartoon" else 0 for c in kinds.column("class")], np.zeros(EXTRA_HUMANS, int)]
    )
    type_groups = np.concatenate([kinds.groups, utk.groups[extra]])
    heads["type"] = linear.fit(type_x, type_y, type_groups, classes=2)
    labels["type"] = ["human", "cartoon"]
    figures["type"] = report("type", heads["type"], type_y, ("human", "cartoon"))

    # Occlusion: training occluders and random shapes on UTKFace and GENKI crops, against clean crops.
    pool = [o for o in occluders() if o.name not in HELD_OUT_OCCLUDERS]
    base = np.vstack([utk.crops, genki.crops])
    base_groups = np.concatenate([utk.groups, genki.groups])
    picked = rng.choice(len(base), 2 * OCCLUDED_CROPS, replace=False)
    crops, region_y = [], []
    for k, i in enumerate(picked):
        if k < OCCLUDED_CROPS // 3 * 2:
            crop, y = overlay(base[i], pool[int(rng.integers(len(pool)))], rng)
        elif k < OCCLUDED_CROPS:
            crop, y = random_shape(base[i], rng)
        else:
            crop, y = base[i], np.zeros(len(OCCLUSION_REGIONS), np.int64)
        crops.append(crop)
        region_y.append(y)
    maps = backbone_maps(crops, "occlusion crops")
    region_y_arr = np.array(region_y)
    figures["occlusion"] = {}
    for r, region in enumerate(OCCLUSION_REGIONS):
        rows, cols = zip(*REGION_CELLS[region], strict=True)
        region_x = maps[:, :, list(rows), list(cols)].mean(axis=2)
        fitted = linear.fit(region_x, region_y_arr[:, r], base_groups[picked], classes=2)
        heads[f"occlusion.{region}"] = fitted
        labels[f"occlusion.{region}"] = ["clear", "occluded"]
        figures["occlusion"][region] = report(
            f"occlusion {region}", fitted, region_y_arr[:, r], ("clear", "occluded")
        )

    ratios = np.array([jaw_to_temple(lm) for lm in shapes.landmarks])
    happy = Split("ck_plus_48", args.cache, keep=lambda row: row["expression"] == "happy")
    rules = {
        **RULES,
        "blur_midpoint": blur_midpoint(utk.crops),
        "triangle_ratio": float(np.percentile(ratios, TRIANGLE_PERCENTILE)),
        "laugh_opening": float(np.median([mouth_opening(lm) for lm in happy.landmarks])),
    }
    openings = {
        "genki_smile": float(
            np.median(
                [
                    mouth_opening(lm)
                    for lm, s in zip(genki.landmarks, genki.column("smile"), strict=True)
                    if s == "1"
                ]
            )
        ),
        "genki_none": float(
            np.median(
                [
                    mouth_opening(lm)
                    for lm, s in zip(genki.landmarks, genki.column("smile"), strict=True)
                    if s == "0"
                ]
            )
        ),
    }
    figures["rules"] = {
        **rules,
        "median_mouth_opening": openings,
        "jaw_to_temple_quantiles_5_50_95": np.percentile(ratios, [5, 50, 95]).tolist(),
        "share_triangular": float(np.mean(ratios >= rules["triangle_ratio"])),
    }
    print(json.dumps(figures["rules"]), flush=True)

    meta = {
        "labels": labels,
        "occlusion_cells": {
            region: [list(cell) for cell in REGION_CELLS[region]] for region in OCCLUSION_REGIONS
        },
        "rules": rules,
        "training_figures": figures,
    }
    arrays = {f"{name}.weights": fit.weights for name, fit in heads.items()}
    arrays.update({f"{name}.bias": fit.bias for name, fit in heads.items()})
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(WEIGHTS, meta=np.array(json.dumps(meta)), **arrays)  # type: ignore[arg-type]
    print(f"wrote {WEIGHTS} ({WEIGHTS.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
