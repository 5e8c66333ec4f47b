"""Feature value skew: does serving see the values training saw?

Pure functions over lists, arrays and dicts: no I/O, no catalog.
`feature_skew(offline, online)` compares an offline (training) sample of one
feature with an online (serving) sample:

- numeric features: the Jensen-Shannon distance (base 2, so in [0, 1])
  between the two histograms over shared bins. The bins are the deciles (by
  default) of the pooled values, plus one bin per *atom* (a single value
  holding at least 1/(4 bins) of the pooled sample: fill values, zeros,
  defaults) and one bin for missing values (None or NaN), so a different fill
  value or a different missing rate always lands in different bins;
- categorical features: the L-infinity distance between the category
  frequency vectors (the largest change in the share of any one category,
  missing counted as a category);
- PSI (population stability index, natural log, over the same bins, offline
  as reference, counts smoothed by +0.5) as extra evidence;
- where both samples are dicts keyed by entity, the share of shared keys whose
  values differ (numbers within `rtol`/`atol`; NaN and None equal each other).

An alarm (severity "warning") needs a *material* and *real* difference: the
distance above `threshold` (default 0.1) and significant in a permutation test
(`p_value < alpha`, 200 relabellings of the pooled sample, the same test as
for embedding drift), because a distance over a sample is biased upwards
(two samples of 100 from one distribution typically show a JS distance of
0.15 to 0.2 over ten bins; `noise_floor` reports the median distance under
relabelling). Or: the share of keys whose values differ above
`mismatch_threshold` (default 0.05), which needs no test: a pipeline computing
a feature the same way agrees on every key.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from catalog.errors import InvalidInput

DEFAULT_THRESHOLD = 0.1
DEFAULT_MISMATCH_THRESHOLD = 0.05
DEFAULT_ALPHA = 0.01
DEFAULT_PERMUTATIONS = 200
DEFAULT_BINS = 10
MAX_ROWS = 10_000
RTOL = 1e-6
ATOL = 1e-9
MISSING = "<missing>"

Kind = Literal["numeric", "categorical"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SkewResult:
    """The outcome of one skew check. `to_evidence()` gives plain JSON types."""

    kind: Kind
    metric: str
    distance: float
    threshold: float
    p_value: float
    alpha: float
    permutations: int
    noise_floor: float
    psi: float
    bins: int
    n_offline: int
    n_online: int
    missing_offline: float
    missing_online: float
    shared_keys: int | None
    mismatched_keys: int | None
    mismatch_share: float | None
    mismatch_threshold: float
    mismatch_examples: tuple[str, ...]
    alarm: bool
    severity: str | None
    reasons: tuple[str, ...]

    def to_evidence(self) -> dict[str, Any]:
        """The finding's evidence: metric, figures, thresholds and why it fired."""
        return {
            "test": "feature value skew",
            "kind": self.kind,
            "metric": self.metric,
            "distance": self.distance,
            "threshold": self.threshold,
            "p_value": self.p_value,
            "alpha": self.alpha,
            "permutations": self.permutations,
            "noise_floor": self.noise_floor,
            "psi": self.psi,
            "bins": self.bins,
            "n_offline": self.n_offline,
            "n_online": self.n_online,
            "missing_offline": self.missing_offline,
            "missing_online": self.missing_online,
            "shared_keys": self.shared_keys,
            "mismatched_keys": self.mismatched_keys,
            "mismatch_share": self.mismatch_share,
            "mismatch_threshold": self.mismatch_threshold,
            "mismatch_examples": list(self.mismatch_examples),
            "alarm": self.alarm,
            "severity": self.severity,
            "reasons": list(self.reasons),
        }


def feature_skew(
    offline: Mapping[Any, Any] | Iterable[Any],
    online: Mapping[Any, Any] | Iterable[Any],
    *,
    kind: Kind | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    mismatch_threshold: float = DEFAULT_MISMATCH_THRESHOLD,
    alpha: float = DEFAULT_ALPHA,
    permutations: int = DEFAULT_PERMUTATIONS,
    bins: int = DEFAULT_BINS,
    max_rows: int = MAX_ROWS,
    seed: int = 0,
) -> SkewResult:
    """Compare the offline and online values of one feature.

    `offline` and `online` are sequences of values, or dicts from entity key to
    value (then the values of shared keys are compared too). `kind` is
    guessed when not given: numeric if every present value is a real number
    (booleans are categorical). Raises `InvalidInput` for an empty side or bad
    parameters.
    """
    if not 0 <= threshold <= 1:
        raise InvalidInput(f"threshold must lie in [0, 1], not {threshold}")
    if not 0 <= mismatch_threshold <= 1:
        raise InvalidInput(f"mismatch_threshold must lie in [0, 1], not {mismatch_threshold}")
    if not 0 < alpha < 1:
        raise InvalidInput(f"alpha must lie in (0, 1), not {alpha}")
    if permutations < 1 or bins < 1 or max_rows < 1:
        raise InvalidInput("permutations, bins and max_rows must be at least 1")
    keyed = isinstance(offline, Mapping) and isinstance(online, Mapping)
    off_values = _values(offline, "offline")
    on_values = _values(online, "online")
    numeric = _all_numeric(off_values) and _all_numeric(on_values)
    if kind is None:
        kind = "numeric" if numeric else "categorical"
    elif kind not in ("numeric", "categorical"):
        raise InvalidInput(f"kind must be 'numeric' or 'categorical', not {kind!r}")
    elif kind == "numeric" and not numeric:
        raise InvalidInput("kind is 'numeric' but the samples hold values that are not numbers")
    rng = np.random.default_rng(seed)
    off_values = _subsample(off_values, max_rows, rng)
    on_values = _subsample(on_values, max_rows, rng)
    if kind == "numeric":
        codes, n_bins = numeric_codes(off_values, on_values, bins)
        metric = "jensen_shannon"
    else:
        codes, n_bins = categorical_codes(off_values, on_values)
        metric = "l_infinity"
    n1 = len(off_values)
    distances = _permuted_distances(codes, n1, n_bins, metric, permutations, rng)
    counts_off = np.bincount(codes[:n1], minlength=n_bins)
    counts_on = np.bincount(codes[n1:], minlength=n_bins)
    distance = float(distances[0])
    p_value = float(np.count_nonzero(distances >= distance - 1e-12)) / distances.shape[0]

    shared = mismatched = None
    share = None
    examples: tuple[str, ...] = ()
    if keyed:
        assert isinstance(offline, Mapping) and isinstance(online, Mapping)
        shared, bad_keys = key_mismatches(offline, online)
        mismatched = len(bad_keys)
        share = mismatched / shared if shared else None
        examples = tuple(str(k) for k in bad_keys[:5])

    reasons: list[str] = []
    if distance > threshold and p_value < alpha:
        reasons.append(f"{metric} distance {distance:.3f} > {threshold} (p = {p_value:.4f})")
    if share is not None and share > mismatch_threshold:
        reasons.append(
            f"{mismatched} of {shared} shared keys ({share:.1%}) differ "
            f"(> {mismatch_threshold:.0%})"
        )
    alarm = bool(reasons)
    return SkewResult(
        kind=kind,
        metric=metric,
        distance=distance,
        threshold=threshold,
        p_value=p_value,
        alpha=alpha,
        permutations=permutations,
        noise_floor=float(np.median(distances[1:])) if distances.shape[0] > 1 else 0.0,
        psi=psi(counts_off, counts_on),
        bins=n_bins,
        n_offline=n1,
        n_online=len(on_values),
        missing_offline=_missing_share(off_values),
        missing_online=_missing_share(on_values),
        shared_keys=shared,
        mismatched_keys=mismatched,
        mismatch_share=share,
        mismatch_threshold=mismatch_threshold,
        mismatch_examples=examples,
        alarm=alarm,
        severity="warning" if alarm else None,
        reasons=tuple(reasons),
    )


# -- distances over frequency vectors -------------------------------------------------


def jensen_shannon_distance(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two count or frequency vectors."""
    return float(_js_rows(_as_rows(p), _as_rows(q))[0])


def l_infinity_distance(p: npt.ArrayLike, q: npt.ArrayLike) -> float:
    """The largest absolute difference between two frequency vectors (counts are normalised)."""
    a, b = _normalise(_as_rows(p)), _normalise(_as_rows(q))
    return float(np.abs(a - b).max())


def psi(expected: npt.ArrayLike, actual: npt.ArrayLike) -> float:
    """Population stability index over shared bins (counts, each smoothed by +0.5)."""
    e = np.asarray(expected, dtype=np.float64) + 0.5
    a = np.asarray(actual, dtype=np.float64) + 0.5
    if e.shape != a.shape or e.ndim != 1:
        raise InvalidInput("psi needs two count vectors of the same length")
    e, a = e / e.sum(), a / a.sum()
    return float(((a - e) * np.log(a / e)).sum())


def _as_rows(values: npt.ArrayLike) -> FloatArray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.shape[0] == 0:
        raise InvalidInput("a frequency vector must be 1-D and non-empty")
    if not np.isfinite(array).all() or (array < 0).any() or array.sum() <= 0:
        raise InvalidInput("a frequency vector must hold finite, non-negative counts")
    return array[None, :]


def _normalise(rows: FloatArray) -> FloatArray:
    result: FloatArray = rows / rows.sum(axis=1, keepdims=True)
    return result


def _js_rows(p: FloatArray, q: FloatArray) -> FloatArray:
    """Row-wise Jensen-Shannon distance, base 2, 0 log 0 = 0."""
    p, q = _normalise(p), _normalise(q)
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=1)
        kq = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=1)
    result: FloatArray = np.sqrt(np.clip((kp + kq) / 2, 0.0, 1.0))
    return result


# -- binning --------------------------------------------------------------------------


def numeric_codes(
    offline: Sequence[Any], online: Sequence[Any], bins: int = DEFAULT_BINS
) -> tuple[IntArray, int]:
    """Bin codes of `offline + online` over shared bins, and the number of bins.

    Bins: quantiles of the pooled non-atom values, then one per atom (a value
    holding at least 1/(4 bins) of the pooled sample), then one for missing.
    """
    values = _to_float(list(offline) + list(online))
    present = ~np.isnan(values)
    finite = values[present]
    codes = np.zeros(values.shape[0], dtype=np.int64)
    atoms = np.empty(0)
    if finite.size:
        unique, counts = np.unique(finite, return_counts=True)
        heavy = counts >= max(values.shape[0] / (4 * bins), 2)
        atoms = unique[heavy | np.isinf(unique)]
    is_atom = present & np.isin(values, atoms)
    spread = present & ~is_atom
    edges = np.empty(0)
    if spread.any():
        quantiles = np.quantile(values[spread], np.arange(1, bins) / bins)
        edges = np.unique(quantiles)
    n_spread = edges.shape[0] + 1 if spread.any() else 0
    codes[spread] = np.searchsorted(edges, values[spread], side="right")
    codes[is_atom] = n_spread + np.searchsorted(atoms, values[is_atom])
    codes[~present] = n_spread + atoms.shape[0]
    return codes, n_spread + atoms.shape[0] + 1


def categorical_codes(offline: Sequence[Any], online: Sequence[Any]) -> tuple[IntArray, int]:
    """Category codes of `offline + online` (missing is its own category)."""
    table: dict[Any, int] = {}
    codes = np.empty(len(offline) + len(online), dtype=np.int64)
    for i, value in enumerate([*offline, *online]):
        label = MISSING if _is_missing(value) else _hashable(value)
        codes[i] = table.setdefault(label, len(table))
    return codes, max(len(table), 1)


def _permuted_distances(
    codes: IntArray,
    n1: int,
    n_bins: int,
    metric: str,
    permutations: int,
    rng: np.random.Generator,
) -> FloatArray:
    """The distance for the observed split (first) and `permutations` relabellings."""
    n = codes.shape[0]
    rows = permutations + 1
    member = np.empty((rows, n1), dtype=np.int64)
    member[0] = np.arange(n1)
    if permutations:
        member[1:] = np.argpartition(rng.random((permutations, n)), n1 - 1, axis=1)[:, :n1]
    flat = (np.arange(rows)[:, None] * n_bins + codes[member]).ravel()
    first = np.bincount(flat, minlength=rows * n_bins).reshape(rows, n_bins).astype(np.float64)
    second = np.bincount(codes, minlength=n_bins)[None, :] - first
    if metric == "jensen_shannon":
        return _js_rows(first, second)
    result: FloatArray = np.abs(_normalise(first) - _normalise(second)).max(axis=1)
    return result


# -- keyed comparison -----------------------------------------------------------------


def key_mismatches(
    offline: Mapping[Any, Any],
    online: Mapping[Any, Any],
    *,
    rtol: float = RTOL,
    atol: float = ATOL,
) -> tuple[int, list[Any]]:
    """The number of shared keys and the (sorted where possible) keys whose values differ."""
    shared = offline.keys() & online.keys()
    bad = [k for k in shared if not values_equal(offline[k], online[k], rtol=rtol, atol=atol)]
    try:
        bad.sort()
    except TypeError:
        bad.sort(key=repr)
    return len(shared), bad


def values_equal(a: Any, b: Any, *, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Equality of two feature values: missing == missing, numbers within tolerance."""
    if _is_missing(a) or _is_missing(b):
        return _is_missing(a) and _is_missing(b)
    if _is_number(a) and _is_number(b):
        x, y = float(a), float(b)
        if math.isinf(x) or math.isinf(y):
            return x == y
        return abs(x - y) <= atol + rtol * max(abs(x), abs(y))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return repr(a) == repr(b)


# -- helpers --------------------------------------------------------------------------


def _values(side: Mapping[Any, Any] | Iterable[Any], name: str) -> list[Any]:
    if isinstance(side, Mapping):
        values = list(side.values())
    elif isinstance(side, str | bytes):
        raise InvalidInput(f"{name} sample must be a sequence of values, not a string")
    else:
        try:
            values = list(np.asarray(side).ravel()) if isinstance(side, np.ndarray) else list(side)
        except TypeError:
            raise InvalidInput(f"{name} sample is not a sequence of values") from None
    if not values:
        raise InvalidInput(f"{name} sample is empty", hint="sample some rows of the feature")
    return values


def _subsample(values: list[Any], max_rows: int, rng: np.random.Generator) -> list[Any]:
    if len(values) <= max_rows:
        return values
    keep = np.sort(rng.choice(len(values), size=max_rows, replace=False))
    return [values[i] for i in keep]


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, float | np.floating) and math.isnan(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real | np.number) and not isinstance(value, bool | np.bool_)


def _all_numeric(values: list[Any]) -> bool:
    present = [v for v in values if not _is_missing(v)]
    return all(_is_number(v) for v in present)


def _to_float(values: list[Any]) -> FloatArray:
    return np.array([np.nan if _is_missing(v) else float(v) for v in values], dtype=np.float64)


def _missing_share(values: list[Any]) -> float:
    return sum(1 for v in values if _is_missing(v)) / len(values)


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return repr(value)
    if isinstance(value, np.generic):
        return value.item()
    return value
