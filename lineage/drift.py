"""Embedding distribution drift: a permutation test between two samples of vectors.

Pure functions over numpy arrays: no I/O, no catalog. `drift_test(baseline,
current)` answers "do these two samples come from the same distribution of
embeddings?" with a stated false-positive rate (`alpha`, default 0.01).

What is tested (all three statistics come out of ONE matrix product of a
`(P + 1) x N` matrix of +1/n1 and -1/n2 group weights, row 0 the observed
split and rows 1..P random relabellings, with the `N x d` pooled data, plus
the same group memberships summed over the rows' squared norms):

- `euclidean`: the distance between the two samples' mean vectors.
- `whitened`: the same centroid difference whitened by the pooled
  covariance, shrunk towards a multiple of the identity with a Ledoit-Wolf
  shrinkage computed by hand (a Mahalanobis distance between centroids,
  Hotelling-like). It sees shifts along directions of small variance that the
  plain distance drowns in the large ones. The covariance comes from at most
  `WHITENING_ROWS` pooled rows picked by content (a hash of the row), and the
  inverse is applied through the Woodbury identity, so the cost is
  `m^2 d` rather than `N d^2 + d^3`.
- `spread`: the log ratio of the mean squared distance of a vector from its
  sample's centroid (the trace of the covariance), two-sided. It catches
  variance collapse (same mean, much smaller spread) and norm changes, which
  leave the centroid where it was.

The three are combined by the permutation distribution of their maximum
(Westfall-Young max-T): each statistic is centred and scaled by the median
and MAD of its P + 1 values, and the p-value is the share of relabellings
whose largest standardised statistic reaches the observed one. This is exact
at any sample size and accounts for the correlation between the statistics.
Bonferroni over the per-statistic permutation p-values cannot work with 200
permutations: the smallest attainable p is 1/201, so two statistics give at
best 2/201 = 0.00995 and three give 3/201 = 0.015 > 0.01, an alarm that can
never fire. The per-statistic p-values are still reported as evidence.

The alarm is `p_value < alpha`. Sample-size-dependent figures never meet a
fixed threshold; the severity uses effect sizes that do not grow with n:

- `effect_size`: the centroid distance divided by the pooled RMS distance of
  a vector from its centroid, with the sampling bias (`s1/n1 + s2/n2`) removed
  from the squared distance first.
- `spread_ratio`: current spread over baseline spread.

Severity is "warning" on an alarm, "error" when in addition
`effect_size >= LARGE_EFFECT` or the spread changed by a factor of at least
`LARGE_SPREAD_FACTOR` either way. Two samples of different dimension are not
compared: the result says so (`comparable=False`, severity "error"), which is
the dimension rule's business rather than a statistical question.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from catalog.errors import InvalidInput

DEFAULT_ALPHA = 0.01
DEFAULT_PERMUTATIONS = 200
MAX_ROWS = 2_000
WHITENING_ROWS = 256
# A centroid shift of a quarter of the RMS distance of a vector from its centroid
# is an error. Calibrated on real embeddings (`python -m benchmarks drift --real`:
# the Python docs and the Debian licence texts, all-MiniLM-L6-v2 and
# multilingual-e5-small): half of the content replaced by another domain measures
# about 0.3 and a 30% partial reindex with another model about 0.4 (errors), a
# fifth of the content about 0.12 and a 5% shift about 0.03 (warnings); a model
# swap about 1.3. In the synthetic worlds of `benchmarks/worlds.py` a revision
# with per-vector cosine 0.98 measures about 0.15 and half the corpus moved to
# two of twenty topics about 0.2 (warnings).
LARGE_EFFECT = 0.25
# The spread (trace of the covariance) halved or doubled: an error.
LARGE_SPREAD_FACTOR = 2.0
# Columns of a row used for its canonical sort key (row order must not matter).
_KEY_COLUMNS = 16

FloatArray = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]


@dataclass(frozen=True)
class DriftResult:
    """The outcome of one drift test. `to_evidence()` gives plain JSON types."""

    comparable: bool
    reason: str | None
    rows_baseline: int
    rows_current: int
    n1: int
    n2: int
    dim: int | None
    dim_current: int | None
    permutations: int
    alpha: float
    seed: int
    p_value: float | None
    p_euclidean: float | None
    p_whitened: float | None
    p_spread: float | None
    euclidean: float | None
    whitened: float | None
    spread_baseline: float | None
    spread_current: float | None
    shrinkage: float | None
    effect_size: float | None
    spread_ratio: float | None
    alarm: bool
    severity: str | None
    #: The statistic that stood out most: `centroid`, `whitened` or `spread` (None if none).
    driver: str | None = None

    def describe(self) -> str:
        """What moved, in words: the statistic that fired and its size."""
        if not self.comparable:
            return self.reason or "not comparable"
        parts = []
        effect, ratio = self.effect_size or 0.0, self.spread_ratio
        if self.driver in ("centroid", "whitened") or effect >= 0.05:
            where = " (along directions of small variance)" if self.driver == "whitened" else ""
            parts.append(f"centroid moved {effect:.2f} of the spread{where}")
        if ratio is not None and (self.driver == "spread" or abs(math.log(ratio)) >= 0.05):
            parts.append(f"spread x{ratio:.2f}")
        return ", ".join(parts) or "distribution changed"

    def to_evidence(self) -> dict[str, Any]:
        """The finding's evidence: the test, its parameters and its figures."""
        return {
            "test": "permutation centroid test (euclidean, whitened, spread; max-T combined)",
            "comparable": self.comparable,
            "reason": self.reason,
            "rows_baseline": self.rows_baseline,
            "rows_current": self.rows_current,
            "n_baseline": self.n1,
            "n_current": self.n2,
            "dim": self.dim,
            "dim_current": self.dim_current,
            "permutations": self.permutations,
            "alpha": self.alpha,
            "seed": self.seed,
            "p_value": self.p_value,
            "p_euclidean": self.p_euclidean,
            "p_whitened": self.p_whitened,
            "p_spread": self.p_spread,
            "centroid_distance": self.euclidean,
            "whitened_distance": self.whitened,
            "spread_baseline": self.spread_baseline,
            "spread_current": self.spread_current,
            "shrinkage": self.shrinkage,
            "effect_size": self.effect_size,
            "spread_ratio": self.spread_ratio,
            "large_effect": LARGE_EFFECT,
            "large_spread_factor": LARGE_SPREAD_FACTOR,
            "alarm": self.alarm,
            "severity": self.severity,
            "driver": self.driver,
            "what_changed": self.describe(),
        }


def drift_test(
    baseline: npt.ArrayLike,
    current: npt.ArrayLike,
    *,
    alpha: float = DEFAULT_ALPHA,
    permutations: int = DEFAULT_PERMUTATIONS,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> DriftResult:
    """Test whether `current` vectors are distributed like `baseline` ones.

    Both are `(n, d)` arrays of any real dtype (fp16 and dequantised int8
    included). Samples larger than `max_rows` are subsampled reproducibly
    (`seed`); the order of rows never matters. Raises `InvalidInput` for an
    empty sample, a single row, a non-2-D array or non-finite values in the
    rows used; two dimensions that differ give a non-comparable result.
    """
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must lie in (0, 1), not {alpha}")
    if permutations < 1:
        raise InvalidInput(f"permutations must be at least 1, not {permutations}")
    if max_rows < 2:
        raise InvalidInput(f"max_rows must be at least 2, not {max_rows}")
    x = _as_matrix(baseline, "baseline")
    y = _as_matrix(current, "current")
    if x.shape[1] != y.shape[1]:
        return DriftResult(
            comparable=False,
            reason=f"dimension changed: baseline {x.shape[1]}, current {y.shape[1]}",
            rows_baseline=x.shape[0],
            rows_current=y.shape[0],
            n1=0,
            n2=0,
            dim=x.shape[1],
            dim_current=y.shape[1],
            permutations=0,
            alpha=alpha,
            seed=seed,
            p_value=None,
            p_euclidean=None,
            p_whitened=None,
            p_spread=None,
            euclidean=None,
            whitened=None,
            spread_baseline=None,
            spread_current=None,
            shrinkage=None,
            effect_size=None,
            spread_ratio=None,
            alarm=True,
            severity="error",
        )
    rng = np.random.default_rng(seed)
    key = rng.standard_normal(min(_KEY_COLUMNS, x.shape[1]))
    xs = _sample(x, max_rows, key, rng, "baseline")
    ys = _sample(y, max_rows, key, rng, "current")
    return _test(xs, ys, x.shape[0], y.shape[0], alpha, permutations, seed, rng)


def _as_matrix(data: npt.ArrayLike, side: str) -> npt.NDArray[Any]:
    try:
        array = np.asarray(data)
    except (TypeError, ValueError) as err:
        raise InvalidInput(f"{side} sample is not an array of vectors: {err}") from None
    if array.dtype.kind not in "fiu":
        raise InvalidInput(f"{side} sample must hold real numbers, not {array.dtype}")
    if array.ndim != 2:
        raise InvalidInput(f"{side} sample must be a 2-D array (rows x dim), not {array.ndim}-D")
    if array.shape[0] < 2:
        raise InvalidInput(
            f"{side} sample has {array.shape[0]} rows; at least 2 are needed",
            hint="sample more vectors",
        )
    if array.shape[1] < 1:
        raise InvalidInput(f"{side} sample has vectors of dimension 0")
    return array


def _sample(
    array: npt.NDArray[Any],
    max_rows: int,
    key: FloatArray,
    rng: np.random.Generator,
    side: str,
) -> Float32Array:
    """At most `max_rows` rows as float32, in a canonical order (row order never matters).

    float32 is what embeddings are stored in and keeps the one big matrix
    product fast; sums that need more precision are taken in float64.
    """
    head = array[:, : key.shape[0]]
    if head.dtype != np.float64:
        head = head.astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        order = np.argsort(head @ key.astype(head.dtype), kind="stable")
    if array.shape[0] > max_rows:
        keep = np.sort(rng.choice(array.shape[0], size=max_rows, replace=False))
        order = order[keep]
    rows = array[order].astype(np.float32)
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        raise InvalidInput(
            f"{side} sample has {int(bad.sum())} of {rows.shape[0]} sampled rows "
            "with NaN or infinite values",
            hint="drop or repair those vectors before testing",
        )
    return rows


def _content_hash(rows: Float32Array, rng: np.random.Generator) -> npt.NDArray[np.uint64]:
    """A pseudo-random 64-bit key per row that depends on its values only.

    Reads the first `_KEY_COLUMNS` values of each row, like the sort key.
    """
    head = np.ascontiguousarray(rows[:, :_KEY_COLUMNS])
    bits = head.view(np.uint32).astype(np.uint64)
    odd = rng.integers(1, 2**63, size=head.shape[1], dtype=np.uint64) | np.uint64(1)
    with np.errstate(over="ignore"):
        mixed = bits * odd
        return (mixed ^ (mixed >> np.uint64(29))).sum(axis=1, dtype=np.uint64)


def _test(
    xs: Float32Array,
    ys: Float32Array,
    rows_x: int,
    rows_y: int,
    alpha: float,
    permutations: int,
    seed: int,
    rng: np.random.Generator,
) -> DriftResult:
    n1, n2, d = xs.shape[0], ys.shape[0], xs.shape[1]
    n = n1 + n2
    centred = np.concatenate([xs, ys])
    centred -= centred.mean(axis=0, dtype=np.float64).astype(np.float32)
    sq = np.einsum("ij,ij->i", centred, centred, dtype=np.float64)

    # Group weights: row 0 is the observed split, rows 1.. random relabellings.
    # One product gives every centroid difference; the spreads need only the
    # group means of the squared norms.
    members = np.empty((permutations + 1, n1), dtype=np.int64)
    members[0] = np.arange(n1)
    members[1:] = np.argpartition(rng.random((permutations, n)), n1 - 1, axis=1)[:, :n1]
    weights = np.full((permutations + 1, n), -1.0 / n2, dtype=np.float32)
    weights[np.arange(permutations + 1)[:, None], members] = 1.0 / n1
    delta = (weights @ centred).astype(np.float64)
    total_sq = float(sq.sum())
    sq_first = sq[members].sum(axis=1)
    sq_diff = sq_first / n1 - (total_sq - sq_first) / n2

    euclid = np.sqrt(np.einsum("ij,ij->i", delta, delta))
    solved, shrinkage = _shrunk_inverse_apply(centred, sq, delta, rng)
    whitened = np.sqrt(np.maximum(np.einsum("ij,ij->i", delta, solved), 0.0))
    # Per-group spread around its own centroid: with centred data,
    # mean1 = delta * n2 / n and mean2 = -delta * n1 / n.
    delta_sq = euclid**2
    spread1 = (total_sq + n2 * sq_diff) / n - delta_sq * (n2 / n) ** 2
    spread2 = (total_sq - n1 * sq_diff) / n - delta_sq * (n1 / n) ** 2
    tiny = np.finfo(np.float64).tiny
    log_ratio = np.log(np.maximum(spread2, tiny)) - np.log(np.maximum(spread1, tiny))

    z_euclid = _standardise(euclid)
    z_white = _standardise(whitened)
    z_spread = np.abs(_standardise(log_ratio))
    max_z = np.maximum(np.maximum(z_euclid, z_white), z_spread)

    p_value = _upper_p(max_z)
    observed = {"centroid": z_euclid[0], "whitened": z_white[0], "spread": z_spread[0]}
    driver = max(observed, key=lambda k: float(observed[k]))
    s1 = float(spread1[0]) * n1 / (n1 - 1)
    s2 = float(spread2[0]) * n2 / (n2 - 1)
    pooled_spread = (s1 + s2) / 2
    bias_free = max(float(delta_sq[0]) - s1 / n1 - s2 / n2, 0.0)
    effect = math.sqrt(bias_free / pooled_spread) if pooled_spread > 0 else 0.0
    ratio = s2 / s1 if s1 > 0 else math.inf
    alarm = p_value < alpha
    severity = None
    if alarm:
        large = effect >= LARGE_EFFECT or not (
            1 / LARGE_SPREAD_FACTOR < ratio < LARGE_SPREAD_FACTOR
        )
        severity = "error" if large else "warning"
    return DriftResult(
        comparable=True,
        reason=None,
        rows_baseline=rows_x,
        rows_current=rows_y,
        n1=n1,
        n2=n2,
        dim=d,
        dim_current=d,
        permutations=permutations,
        alpha=alpha,
        seed=seed,
        p_value=p_value,
        p_euclidean=_upper_p(euclid),
        p_whitened=_upper_p(whitened),
        p_spread=_upper_p(np.abs(log_ratio - np.median(log_ratio))),
        euclidean=float(euclid[0]),
        whitened=float(whitened[0]),
        spread_baseline=s1,
        spread_current=s2,
        shrinkage=shrinkage,
        effect_size=effect,
        spread_ratio=ratio if math.isfinite(ratio) else None,
        alarm=alarm,
        severity=severity,
        driver=driver,
    )


def _shrunk_inverse_apply(
    centred: Float32Array, sq: FloatArray, delta: FloatArray, rng: np.random.Generator
) -> tuple[FloatArray, float]:
    """`delta @ inv(S)` for S the Ledoit-Wolf-shrunk pooled covariance, and the shrinkage.

    S is estimated from at most `WHITENING_ROWS` pooled rows chosen by content,
    so it is a function of the pooled sample only (never of the labels) and the
    permutation test stays exact. With U those m centred rows,
    S = a I + b U'U; Woodbury gives inv(S) = (I - U' inv(a/b I + U U') U) / a.
    """
    m_total, d = centred.shape
    if m_total > WHITENING_ROWS:
        pick = np.sort(np.argsort(_content_hash(centred, rng), kind="stable")[:WHITENING_ROWS])
        u, u_sq = centred[pick].astype(np.float64), sq[pick]
    else:
        u, u_sq = centred.astype(np.float64), sq
    m = u.shape[0]
    gram = u @ u.T
    # Ledoit-Wolf (2004) towards mu * I, all from the m x m Gram matrix:
    # trace(S) = trace(G) / m, ||S||_F^2 = ||G||_F^2 / m^2, sum ||u_i||^4.
    mu = float(u_sq.sum()) / (m * d)
    if mu <= 0:
        return np.zeros_like(delta), 1.0
    frob = float(np.einsum("ij,ij->", gram, gram)) / m**2
    dispersion = max(frob / d - mu**2, 0.0)
    beta = max(float((u_sq**2).sum()) / m**2 - frob / m, 0.0) / d
    shrinkage = 1.0 if dispersion == 0 else min(beta, dispersion) / dispersion
    a = shrinkage * mu
    b = (1 - shrinkage) / m
    if b == 0 or a == 0:
        scale = a if a > 0 else mu
        return delta / scale, shrinkage
    inner = gram + (a / b) * np.eye(m)
    projected = u @ delta.T
    correction = np.linalg.solve(inner, projected)
    solved = (delta - (u.T @ correction).T) / a
    return solved, shrinkage


def _standardise(values: FloatArray) -> FloatArray:
    """Centre by the median, scale by the MAD (the std if the MAD is zero)."""
    centre = np.median(values)
    spread = 1.4826 * float(np.median(np.abs(values - centre)))
    if spread <= 0:
        spread = float(values.std())
    if spread <= 0:
        return np.zeros_like(values)
    result: FloatArray = (values - centre) / spread
    return result


def _upper_p(values: FloatArray) -> float:
    """Share of the P + 1 values (observed first) at least as large as the observed."""
    return float(np.count_nonzero(values >= values[0])) / values.shape[0]
