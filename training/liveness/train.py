"""Train and measure the passive liveness scorer on NUAA; write the shipped weights.

    python -m training.liveness.train [--cache /tmp/nuaa_crops.npz] [--skip-ship]

Protocol: leave-one-subject-out over NUAA's subjects (a subject's frames are never on both sides),
two approaches on the same folds:
  A. uniform-LBP histograms in YCrCb and HSV + L2 logistic regression (numpy);
  B. a small CNN trained here with torch on CPU.
Both train with class-balanced losses, so their scores sit around 0.5 for an undecided face and the
decision threshold is a fixed 0.5, chosen before seeing any held-out subject. Held-out predictions are
pooled over the folds for APCER, BPCER, ACER and ROC AUC. The better approach is then trained on
every subject and written to renlian/models/weights/.

Deterministic: fixed seeds, two torch threads, deterministic algorithms.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from torch import nn

from bench.datasets import machine, read_bgr
from renlian.models.cache import ModelCache
from renlian.models.registry import MODELS
from renlian.models.runtime import configure_opencv
from renlian.settings import Settings
from renlian.vision.detector import YuNetDetector
from renlian.vision.liveness import INPUT_SIZE, LivenessScorer, liveness_input, texture_features

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "nuaa"
WEIGHTS = Path(__file__).resolve().parents[2] / "renlian" / "models" / "weights"
SEED = 20261126
THRESHOLD = 0.5
RIDGE = 1.0  # L2 strength of the logistic regression, per unit of (balanced) sample weight
EPOCHS = 14
BATCH = 32


@dataclass
class Dataset:
    crops: NDArray[np.uint8]  # N x INPUT_SIZE x INPUT_SIZE x 3
    live: NDArray[np.int64]  # 1 = live, 0 = printed-photo spoof
    subjects: NDArray[np.str_]
    missed: int  # images where the detector found no face


def face_detector() -> YuNetDetector:
    """The service's own detector with the service's settings.

    Not `bench.datasets.analyzer()`: the analyzer also loads the bundled liveness weights, which are
    what this script makes, so it could not run on a fresh checkout or after a change to them.
    """
    settings = Settings()
    configure_opencv(2)
    path = ModelCache(settings.model_cache()).ensure([MODELS["yunet"]])["yunet"]
    return YuNetDetector(
        path, max_side=settings.detect_max_side, score_threshold=settings.detect_score_threshold
    )


def load(cache: Path | None) -> Dataset:
    if cache is not None and cache.exists():
        with np.load(cache) as data:
            return Dataset(data["crops"], data["live"], data["subjects"], int(data["missed"]))
    rows = list(csv.DictReader((DATA / "labels.csv").open()))
    detector = face_detector()
    crops, live, subjects, missed = [], [], [], 0
    for row in rows:
        bgr = read_bgr(DATA / row["file"])
        faces = detector.detect(bgr)
        if not faces:
            missed += 1
            continue
        crops.append(liveness_input(bgr, faces[0]))
        live.append(1 if row["label"] == "live" else 0)
        subjects.append(row["subject"])
    data = Dataset(np.stack(crops), np.array(live), np.array(subjects), missed)
    if cache is not None:
        np.savez_compressed(
            cache, crops=data.crops, live=data.live, subjects=data.subjects, missed=data.missed
        )
    return data


# --- A: colour texture + logistic regression ---------------------------------------------------------


@dataclass
class Linear:
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    weights: NDArray[np.float64]
    bias: float

    def logits(self, features: NDArray[np.float32]) -> NDArray[np.float64]:
        out: NDArray[np.float64] = ((features - self.mean) / self.scale) @ self.weights + self.bias
        return out


def balanced_weights(live: NDArray[np.int64]) -> NDArray[np.float64]:
    """Per-sample weights giving each class half the total: NUAA has more spoof than live frames."""
    n_live = max(int(live.sum()), 1)
    n_spoof = max(len(live) - n_live, 1)
    return np.where(live == 1, len(live) / (2 * n_live), len(live) / (2 * n_spoof))


def fit_linear(features: NDArray[np.float32], live: NDArray[np.int64]) -> Linear:
    """L2 logistic regression by Newton's method (convex, so no seed and no learning rate)."""
    mean = features.mean(axis=0).astype(np.float64)
    scale = features.std(axis=0).astype(np.float64) + 1e-3
    x = (features - mean) / scale
    x1 = np.hstack([x, np.ones((len(x), 1))])
    sample = balanced_weights(live)
    penalty = RIDGE * np.eye(x1.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    theta = np.zeros(x1.shape[1])
    for _ in range(25):
        p = 1.0 / (1.0 + np.exp(-(x1 @ theta)))
        gradient = x1.T @ (sample * (p - live)) + penalty @ theta
        hessian = (x1 * (sample * p * (1 - p))[:, None]).T @ x1 + penalty
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return Linear(mean, scale, theta[:-1], float(theta[-1]))


# --- B: small CNN ---------------------------------------------------------------------------------------


class SmallCnn(nn.Module):
    """Four stride-2 conv blocks then global average pooling: ~41k parameters, ~170 KB as ONNX.

    The input is the raw BGR crop (0-255) so that serving needs no normalisation code of its own.
    """

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            )

        self.features = nn.Sequential(block(3, 12), block(12, 24), block(24, 48), block(48, 64))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(64, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x / 127.5 - 1.0
        x = self.features(x).mean(dim=(2, 3))
        out: torch.Tensor = self.head(x)
        return out


def to_tensor(crops: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crops.transpose(0, 3, 1, 2)).astype(np.float32))


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Mirror and shift by a few pixels: the subject's pose and framing vary, the print cues do not."""
    flip = torch.rand(batch.shape[0], generator=generator) < 0.5
    batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
    dy, dx = (int(v) for v in torch.randint(-6, 7, (2,), generator=generator))
    batch = torch.roll(batch, shifts=(dy, dx), dims=(2, 3))
    # Exposure changes with the room, not with liveness; a global gain keeps the net off it.
    gain = 0.8 + 0.4 * torch.rand(batch.shape[0], 1, 1, 1, generator=generator)
    return (batch * gain).clamp(0, 255)


def fit_cnn(crops: NDArray[np.uint8], live: NDArray[np.int64], seed: int) -> SmallCnn:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = SmallCnn()
    x, y = to_tensor(crops), torch.from_numpy(live.astype(np.float32))
    n_live = float(y.sum())
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=torch.tensor((len(y) - n_live) / max(n_live, 1.0)))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    steps = EPOCHS * ((len(y) + BATCH - 1) // BATCH)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=steps)
    model.train()
    for _ in range(EPOCHS):
        order = torch.randperm(len(y), generator=generator)
        for start in range(0, len(y), BATCH):
            index = order[start : start + BATCH]
            if len(index) < 2:
                continue  # batch norm needs two samples
            logits = model(augment(x[index], generator)).squeeze(1)
            loss = loss_fn(logits, y[index])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    model.eval()
    return model


def cnn_logits(model: SmallCnn, crops: NDArray[np.uint8]) -> NDArray[np.float64]:
    with torch.no_grad():
        out: NDArray[np.float64] = model(to_tensor(crops)).squeeze(1).double().numpy()
    return out


# --- protocol ---------------------------------------------------------------------------------------------


@dataclass
class Metrics:
    apcer: float  # spoofs accepted as live
    bpcer: float  # live faces rejected
    acer: float
    auc: float
    eer: float
    images: int
    subjects: int


def roc_auc(score: NDArray[np.float64], live: NDArray[np.int64]) -> float:
    """Probability that a random live face outscores a random spoof (ties count half)."""
    pos, neg = score[live == 1], score[live == 0]
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (len(pos) * len(neg)))


def equal_error_rate(score: NDArray[np.float64], live: NDArray[np.int64]) -> float:
    best = 1.0
    for t in np.unique(score):
        apcer = float((score[live == 0] >= t).mean())
        bpcer = float((score[live == 1] < t).mean())
        best = min(best, max(apcer, bpcer))
    return best


def metrics(prob: NDArray[np.float64], live: NDArray[np.int64], subjects: NDArray[np.str_]) -> Metrics:
    apcer = float((prob[live == 0] >= THRESHOLD).mean())
    bpcer = float((prob[live == 1] < THRESHOLD).mean())
    return Metrics(
        apcer,
        bpcer,
        (apcer + bpcer) / 2,
        roc_auc(prob, live),
        equal_error_rate(prob, live),
        len(live),
        len(set(subjects.tolist())),
    )


def sigmoid(logits: NDArray[np.float64]) -> NDArray[np.float64]:
    out: NDArray[np.float64] = 1.0 / (1.0 + np.exp(-np.clip(logits, -50, 50)))
    return out


def loso(data: Dataset, features: NDArray[np.float32]) -> tuple[dict[str, NDArray[np.float64]], SmallCnn]:
    """Held-out probabilities of live per approach, and the last fold's CNN (to test the export on)."""
    held_out = {"A": np.zeros(len(data.live)), "B": np.zeros(len(data.live))}
    cnn = SmallCnn()
    for fold, subject in enumerate(sorted(set(data.subjects.tolist()))):
        test = data.subjects == subject
        train = ~test
        linear = fit_linear(features[train], data.live[train])
        held_out["A"][test] = sigmoid(linear.logits(features[test]))
        cnn = fit_cnn(data.crops[train], data.live[train], SEED + fold)
        held_out["B"][test] = sigmoid(cnn_logits(cnn, data.crops[test]))
        print(f"  fold {subject}: {int(test.sum())} images held out", flush=True)
    return held_out, cnn


# --- shipping ---------------------------------------------------------------------------------------------


def export_cnn(model: SmallCnn, path: Path, threshold: float) -> None:
    """ONNX, opset 17, batch dimension dynamic; the operating threshold travels in the metadata."""
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE),),
        str(path),
        input_names=["crop_bgr"],
        output_names=["live_logit"],
        dynamic_axes={"crop_bgr": {0: "n"}, "live_logit": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    graph = onnx.load(str(path))
    onnx.helper.set_model_props(
        graph, {"threshold": str(threshold), "input": f"BGR 0-255 crop, 1x3x{INPUT_SIZE}x{INPUT_SIZE}"}
    )
    onnx.checker.check_model(graph)
    path.write_bytes(graph.SerializeToString())


def export_linear(linear: Linear, path: Path, threshold: float) -> None:
    """An .npz that np.load reads, written byte for byte the same on every run.

    np.savez stamps each member with the current time, so its sha256 would change on every run; the
    members are written here with a fixed timestamp instead.
    """
    arrays = {
        "mean": linear.mean.astype(np.float32),
        "scale": linear.scale.astype(np.float32),
        "weights": linear.weights.astype(np.float32),
        "bias": np.array(linear.bias, dtype=np.float32),
        "threshold": np.array(threshold, dtype=np.float32),
    }
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(member, buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, help="detected crops kept here between runs")
    parser.add_argument("--skip-ship", action="store_true", help="measure only; write no weights")
    args = parser.parse_args()

    np.random.seed(SEED)
    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    began = time.perf_counter()

    data = load(args.cache)
    print(
        f"NUAA: {len(data.live)} faces ({int(data.live.sum())} live, {int((data.live == 0).sum())} spoof), "
        f"{len(set(data.subjects.tolist()))} subjects, {data.missed} images without a detected face",
        flush=True,
    )
    features = np.stack([texture_features(c) for c in data.crops])
    held_out, last_cnn = loso(data, features)
    # The CNN's ONNX path is checked whichever approach ships, so that either can be shipped.
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "liveness.onnx"
        export_cnn(last_cnn, onnx_path, THRESHOLD)
        print("CNN (last fold) ", end="")
        check_export(onnx_path, data.crops[:64], sigmoid(cnn_logits(last_cnn, data.crops[:64])))

    names = {"A": "LBP YCrCb+HSV + logistic regression", "B": "small CNN (ONNX)"}
    results = {key: metrics(prob, data.live, data.subjects) for key, prob in held_out.items()}
    print(f"\nLOSO, threshold {THRESHOLD}, held-out predictions pooled:")
    print("| approach | APCER | BPCER | ACER | AUC | EER | images | subjects |")
    print("|---|---|---|---|---|---|---|---|")
    for key, m in results.items():
        print(
            f"| {key}. {names[key]} | {m.apcer:.2%} | {m.bpcer:.2%} | {m.acer:.2%} | {m.auc:.4f} "
            f"| {m.eer:.2%} | {m.images} | {m.subjects} |"
        )
    print("\nPer held-out subject, ACER at the threshold, A / B (one-class subjects: that class's error):")
    for subject in sorted(set(data.subjects.tolist())):
        mask = data.subjects == subject
        row = []
        for key in ("A", "B"):
            prob, live = held_out[key][mask], data.live[mask]
            errors = [float((prob[live == 0] >= THRESHOLD).mean())] if (live == 0).any() else []
            errors += [float((prob[live == 1] < THRESHOLD).mean())] if (live == 1).any() else []
            row.append(f"{np.mean(errors):.1%}")
        print(f"  {subject}: n={int(mask.sum())} A {row[0]} B {row[1]}")

    # Lower ACER wins; AUC breaks a tie.
    chosen = min(results, key=lambda k: (round(results[k].acer, 4), -results[k].auc))
    print(f"\nships: {chosen}. {names[chosen]}")
    if not args.skip_ship:
        WEIGHTS.mkdir(parents=True, exist_ok=True)
        if chosen == "B":
            model = fit_cnn(data.crops, data.live, SEED)
            path = WEIGHTS / "liveness.onnx"
            export_cnn(model, path, THRESHOLD)
            reference = sigmoid(cnn_logits(model, data.crops[:64]))
        else:
            linear = fit_linear(features, data.live)
            path = WEIGHTS / "liveness.npz"
            export_linear(linear, path, THRESHOLD)
            reference = sigmoid(linear.logits(features[:64]))
        check_export(path, data.crops[:64], reference)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        print(f"wrote {path} ({path.stat().st_size} bytes) sha256 {digest}")
    print(f"machine: {machine()}; {time.perf_counter() - began:.0f} s")


def check_export(path: Path, crops: NDArray[np.uint8], reference: NDArray[np.float64]) -> None:
    """The shipped file, run the way the service runs it, must reproduce the training framework."""
    scorer = LivenessScorer(path, threads=2)
    got = np.array([scorer.score_crop(c) for c in crops])
    worst = float(np.abs(got - reference).max())
    print(f"export check: max |shipped - trained| score difference over {len(crops)} crops = {worst:.2e}")
    if worst > 1e-4:
        raise SystemExit("exported model does not match the trained one")


if __name__ == "__main__":
    main()
