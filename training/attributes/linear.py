"""Ridge heads with a calibration layer, folded into one matrix and bias over the raw features.

Ridge regression onto +-1 one-hot targets (or the value, for regressions) is closed-form and
deterministic; its scores are then calibrated on out-of-fold predictions (a small multinomial logistic
regression for classes, a least-squares line for values), and the standardisation, ridge and
calibration, all linear, are multiplied into one (weights, bias) the service applies as is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sklearn.linear_model import LogisticRegression

FOLDS = 5
LAMBDAS = (0.1, 0.3, 1.0)  # ridge strength per feature dimension, chosen on out-of-fold scores

Array = NDArray[np.float64]


@dataclass
class Fitted:
    weights: NDArray[np.float32]
    bias: NDArray[np.float32]
    out_of_fold: Array  # calibrated out-of-fold logits (classes) or values (regression)
    ridge: float


def folds_of(groups: NDArray[np.str_]) -> NDArray[np.int64]:
    """Fold numbers by group, so a subject's photos never sit on both sides of a fold."""
    unique = sorted(set(groups.tolist()))
    order = np.random.default_rng(20261126).permutation(len(unique))
    fold = {group: int(order[i]) % FOLDS for i, group in enumerate(unique)}
    return np.array([fold[g] for g in groups.tolist()])


def _ridge_scores(gram: Array, targets: Array, ridge: float, folds: NDArray[np.int64]) -> Array:
    scores = np.zeros_like(targets)
    for k in range(FOLDS):
        train, test = folds != k, folds == k
        centre = targets[train].mean(axis=0)
        alpha = np.linalg.solve(
            gram[np.ix_(train, train)] + ridge * np.eye(int(train.sum())), targets[train] - centre
        )
        scores[test] = gram[np.ix_(test, train)] @ alpha + centre
    return scores


def fit(
    features: NDArray[np.float32],
    target: NDArray[np.int64] | Array,
    groups: NDArray[np.str_],
    *,
    classes: int | None,
) -> Fitted:
    """`classes` None fits a regression on `target`; otherwise `target` holds class indices."""
    x = features.astype(np.float64)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    z = (x - mean) / scale
    gram = z @ z.T
    folds = folds_of(groups)
    if classes is None:
        targets = np.asarray(target, np.float64)[:, None]
    else:
        targets = np.eye(classes)[np.asarray(target, np.int64)] * 2.0 - 1.0

    def quality(scores: Array) -> float:
        if classes is None:
            return -float(np.mean(np.abs(scores[:, 0] - targets[:, 0])))
        return float(np.mean(scores.argmax(axis=1) == target))

    candidates = {lam: _ridge_scores(gram, targets, lam * z.shape[1], folds) for lam in LAMBDAS}
    lam = max(LAMBDAS, key=lambda key: quality(candidates[key]))
    scores = candidates[lam]

    centre = targets.mean(axis=0)
    alpha = np.linalg.solve(gram + lam * z.shape[1] * np.eye(len(z)), targets - centre)
    ridge_w = z.T @ alpha  # d x k over standardised features
    ridge_b = centre

    if classes is None:
        slope, intercept = np.polyfit(scores[:, 0], targets[:, 0], 1)
        calib_w, calib_b = np.array([[slope]]), np.array([intercept])
    else:
        calibrator = LogisticRegression(C=100.0, max_iter=2000).fit(scores, target)
        coef, icpt = calibrator.coef_, calibrator.intercept_
        if classes == 2:  # sklearn keeps one logit for two classes: class 1 against class 0
            coef, icpt = np.vstack([np.zeros_like(coef), coef]), np.concatenate([[0.0], icpt])
        calib_w, calib_b = coef.T, icpt
    out_of_fold = scores @ calib_w + calib_b
    weights = (ridge_w / scale[:, None]) @ calib_w
    bias = (ridge_b - (mean / scale) @ ridge_w) @ calib_w + calib_b
    return Fitted(weights.astype(np.float32), bias.astype(np.float32), out_of_fold, lam)


def softmax(logits: Array) -> Array:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    out: Array = shifted / shifted.sum(axis=1, keepdims=True)
    return out
