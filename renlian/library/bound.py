"""int8 codes of embeddings, and the bound on how far a score computed from codes is from the exact one.

A gallery row x (float32) is kept as int8 codes c with a scale s = max|x_j| / 127, so x = s c + r
with every |r_j| <= s / 2. A probe q is coded with 63 levels, b_j in [-63, 63], step t =
max|q_j| / 63, so q = t b + e. The first pass computes a = s t (c . b) from integers only; then

    x . q - a = x . q - (x - r) . (q - e) = x . e + r . (t b)
    |x . q - a| <= ||x|| ||e|| + ||r|| ||t b||                       (Cauchy-Schwarz, twice)

||x|| and ||r|| are kept per row, ||e|| and ||t b|| per probe, each rounded up. A slack of 2^-20 of
the largest magnitude in play covers every floating-point rounding between the integers and the
bound: float32 products in the first pass (two roundings, 2^-23 relative), the bound's own sums, and
the float64 exact score (docs/library.md has the whole argument).

The exact score of a row is float64 arithmetic over its float32 values, summed by a fixed pairwise
tree: each row's score depends on that row alone, never on which other rows are scored with it or on
memory alignment, so a re-rank over a few candidates and a brute force over the whole group give
bit-identical scores, and equal scores (duplicate faces) are really equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

ROW_LEVELS = 127
# Row codes are kept offset to [1, 255] as uint8 (c + 128), probe codes within [-63, 63] as int8:
# x86's byte multiply-add (vpmaddubsw) saturates a pair of u8 x s8 products at 32767, and
# 2 x 255 x 63 = 32130 fits; with the probe's full [-127, 127] range it would not, and the integers
# would be wrong.
ROW_OFFSET = 128
QUERY_LEVELS = 63
SLACK = 2.0**-20
# Rows and probes whose largest coordinate is below this are coded as all zeros: a scale this small
# would make the first pass's float32 products subnormal, where rounding is no longer relative.
TINY = 2.0**-40
# Covers float32 squares that underflow in the norms, and any absolute rounding near zero.
FLOOR = 2.0**-60


def round_up(values: NDArray[np.float64]) -> NDArray[np.float32]:
    """float64 -> float32, never below the float64 value (which is itself nudged up past its own
    rounding error)."""
    nudged = values * (1 + 2.0**-40)
    down = nudged.astype(np.float32)
    return np.where(down < nudged, np.nextafter(down, np.float32(np.inf)), down).astype(np.float32)


@dataclass(frozen=True)
class RowCodes:
    """Rows as the first pass reads them: codes, and per row what its bound needs."""

    codes: NDArray[np.int8]  # (n, dim)
    scale: NDArray[np.float32]  # s
    norm: NDArray[np.float32]  # ||x||, rounded up
    residual: NDArray[np.float32]  # ||x - s c||, rounded up


def code_rows(vectors: NDArray[np.float32]) -> RowCodes:
    """Codes and norms of float32 rows, all in float32 (it is several times faster than float64 at
    start-up), each norm then raised past its own rounding error: float32 sums of 512 squares are
    within 512 x 2^-24 of the exact sum (relative), far inside the 2^-10 added; the residual's
    coordinates are each within 2^-23 x max|x_j| of the exact x_j - s c_j, so its norm is within
    sqrt(dim) x 2^-23 x max|x_j| (twice that is added)."""
    rows = np.ascontiguousarray(vectors, np.float32)
    peak = np.abs(rows).max(axis=1)
    scale = np.where(peak >= TINY, peak / np.float32(ROW_LEVELS), np.float32(0)).astype(np.float32)
    inverse = np.float32(1) / np.where(scale > 0, scale, np.float32(1))
    codes = np.clip(np.rint(rows * inverse[:, None]), -ROW_LEVELS, ROW_LEVELS).astype(np.int8)
    residual = rows - scale[:, None] * codes
    margin = np.float64(1 + 2.0**-10)
    floor = np.sqrt(rows.shape[1]) * (2.0**-22 * peak.astype(np.float64) + FLOOR)
    return RowCodes(
        codes,
        scale,
        round_up(np.sqrt(np.einsum("ij,ij->i", rows, rows).astype(np.float64)) * margin + floor),
        round_up(np.sqrt(np.einsum("ij,ij->i", residual, residual).astype(np.float64)) * margin + floor),
    )


@dataclass(frozen=True)
class QueryCode:
    codes: NDArray[np.int8]  # (dim,): b
    step: np.float32  # t
    error: float  # ||q - t b||, rounded up
    coded_norm: float  # ||t b||, rounded up
    slack: float  # SLACK x the largest magnitude any rounding error is relative to

    def bound(self, norm: NDArray[np.float32], residual: NDArray[np.float32]) -> NDArray[np.float64]:
        """The most |exact - first pass| can be for rows of these norms and residual norms."""
        norm64, residual64 = norm.astype(np.float64), residual.astype(np.float64)
        return (
            (norm64 * self.error + residual64 * self.coded_norm) * (1 + SLACK)
            + (norm64 + residual64) * self.slack
            + FLOOR
        )


def code_query(query: NDArray[np.float32]) -> QueryCode:
    q = np.asarray(query, np.float32)
    peak = float(np.abs(q).max())
    step = np.float32(peak / QUERY_LEVELS) if peak >= TINY else np.float32(1)
    b = np.clip(np.rint(q.astype(np.float64) / float(step)), -QUERY_LEVELS, QUERY_LEVELS)
    if peak < TINY:
        b[:] = 0
    coded = float(step) * b  # exact in float64, like the rows' residual
    error = float(round_up(np.array([np.sqrt(np.square(q - coded).sum())]))[0])
    coded_norm = float(round_up(np.array([np.sqrt(np.square(coded).sum())]))[0])
    norm = norm_up(q)
    return QueryCode(
        b.astype(np.int8),
        step,
        error,
        coded_norm,
        SLACK * (norm + error + coded_norm),
    )


def norm_up(query: NDArray[np.float32]) -> float:
    """||q||, never below the exact value."""
    return float(round_up(np.array([np.sqrt(np.square(np.asarray(query, np.float64)).sum())]))[0])


def float32_bound(norm: NDArray[np.float32], query_norm: float, dim: int) -> NDArray[np.float64]:
    """The most a float32 dot product x . q can be from the exact score, for rows of these norms and
    a probe of this norm, whatever BLAS does (any order of sums, fused multiply-adds or not):
    gamma_dim = dim u / (1 - dim u) of sum |x_j q_j| <= ||x|| ||q||, doubled to cover the exact score's
    own float64 rounding; plus what subnormal coordinates flushed to zero can lose (each below
    2^-126 times the other vector's coordinate). The caller keeps ||x|| ||q|| below 2^100, so no
    float32 product or sum overflows."""
    unit = dim * 2.0**-24
    gamma = 2 * unit / (1 - unit)
    norm64 = norm.astype(np.float64)
    bound: NDArray[np.float64] = norm64 * (query_norm * gamma) + (norm64 + query_norm) * (
        np.sqrt(dim) * 2.0**-120
    )
    return bound + FLOOR


def exact_scores(rows: NDArray[np.float32], query: NDArray[np.float32]) -> NDArray[np.float64]:
    """x . q for each row, in float64, summed by a fixed pairwise tree (module doc)."""
    products = np.asarray(rows, np.float32).astype(np.float64) * np.asarray(query, np.float32).astype(
        np.float64
    )
    width = products.shape[1]
    padded = 1 << max(0, (width - 1).bit_length())
    if padded != width:
        products = np.pad(products, ((0, 0), (0, padded - width)))
    while padded > 1:
        padded //= 2
        products = products[:, :padded] + products[:, padded:]
    return products[:, 0]
