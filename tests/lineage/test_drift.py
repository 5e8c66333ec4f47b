"""The embedding drift test: fires on clear drift, silent on the clean twin, exact under H0."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks.worlds import World, as_fp16, as_int8, embedding_pair
from catalog.errors import InvalidInput
from lineage.drift import LARGE_EFFECT, drift_test

D = 24


def gaussian(rng: np.random.Generator, n: int, d: int = D, shift: float = 0.0) -> np.ndarray:
    """Anisotropic vectors: a common mean, decaying variances, an optional shift on one axis."""
    scales = np.linspace(1.0, 0.1, d)
    x = rng.standard_normal((n, d)) * scales + 0.5
    x[:, -1] += shift
    return x


@pytest.fixture(scope="module")
def world() -> World:
    return World(seed=3, dim=64, latent=16, topics=8)


def test_a_clear_shift_fires_and_the_clean_twin_stays_silent() -> None:
    rng = np.random.default_rng(0)
    baseline = gaussian(rng, 300)
    clean = drift_test(baseline, gaussian(rng, 300))
    shifted = drift_test(baseline, gaussian(rng, 300, shift=0.5))
    assert clean.p_value is not None and shifted.p_value is not None
    assert not clean.alarm and clean.severity is None and clean.p_value > 0.01
    assert shifted.alarm and shifted.p_value < 0.01
    assert shifted.severity in ("warning", "error")


def test_the_whitened_statistic_sees_a_shift_along_a_quiet_direction() -> None:
    # A shift of 0.15 along the axis of standard deviation 0.1 is lost in the
    # total spread for the plain distance but plain for the whitened one.
    rng = np.random.default_rng(1)
    result = drift_test(gaussian(rng, 400), gaussian(rng, 400, shift=0.15))
    assert result.alarm
    assert result.p_whitened is not None and result.p_euclidean is not None
    assert result.p_whitened < 0.01 < result.p_euclidean


def test_variance_collapse_fires_through_the_spread_statistic() -> None:
    rng = np.random.default_rng(2)
    baseline = gaussian(rng, 300)
    current = gaussian(rng, 300)
    collapsed = current.mean(axis=0) + 0.6 * (current - current.mean(axis=0))
    result = drift_test(baseline, collapsed)
    assert result.alarm and result.p_spread is not None and result.p_spread < 0.01
    assert result.spread_ratio is not None and result.spread_ratio < 0.5
    assert result.severity == "error"


def test_severity_is_an_error_only_for_a_large_effect() -> None:
    rng = np.random.default_rng(3)
    baseline = gaussian(rng, 1_000)
    small = drift_test(baseline, gaussian(rng, 1_000, shift=0.3))
    large = drift_test(baseline, gaussian(rng, 1_000, shift=3.0))
    assert small.alarm and small.severity == "warning"
    assert small.effect_size is not None and small.effect_size < LARGE_EFFECT
    assert large.severity == "error"
    assert large.effect_size is not None and large.effect_size >= LARGE_EFFECT


def test_the_effect_size_does_not_grow_with_the_sample() -> None:
    rng = np.random.default_rng(4)
    effects = [
        drift_test(gaussian(rng, n), gaussian(rng, n, shift=0.5), permutations=20).effect_size
        for n in (200, 1_800)
    ]
    assert effects[0] is not None and effects[1] is not None
    assert abs(effects[0] - effects[1]) < 0.05


def test_p_values_are_roughly_uniform_under_the_null() -> None:
    rng = np.random.default_rng(5)
    p_values = [
        drift_test(gaussian(rng, 40, d=8), gaussian(rng, 40, d=8), seed=trial).p_value
        for trial in range(100)
    ]
    assert all(p is not None for p in p_values)
    rate = np.mean([p is not None and p < 0.05 for p in p_values])
    assert rate < 0.12
    assert 0.3 < float(np.median([p for p in p_values if p is not None])) < 0.7


def test_a_model_swap_fires_and_the_same_model_does_not(world: World) -> None:
    model = world.model(seed=0)
    rng = np.random.default_rng(6)
    baseline, same = embedding_pair(world, model, "no_drift", 300, rng)
    _, swapped = embedding_pair(world, model, "model_swap", 300, rng)
    assert not drift_test(baseline, same).alarm
    swap = drift_test(baseline, swapped)
    assert swap.alarm and swap.severity == "error"


def test_fp16_and_int8_storage_do_not_alarm(world: World) -> None:
    model = world.model(seed=0)
    rng = np.random.default_rng(7)
    baseline, current = embedding_pair(world, model, "no_drift", 300, rng)
    plain = drift_test(baseline, current)
    half = drift_test(baseline, as_fp16(current))
    quantised = drift_test(baseline, as_int8(current))
    assert not plain.alarm and not half.alarm and not quantised.alarm
    # What the test measures barely moves with the storage type. (The p-values
    # themselves are permutation counts near no threshold: a rounding can move
    # one statistic past a few permuted ones, so they are not compared.)
    for stored in (half, quantised):
        assert stored.euclidean == pytest.approx(plain.euclidean, rel=0.05)
        assert stored.whitened == pytest.approx(plain.whitened, rel=0.05)
        assert stored.spread_ratio == pytest.approx(plain.spread_ratio, rel=0.01)


def test_the_result_is_reproducible_with_a_seed() -> None:
    rng = np.random.default_rng(8)
    x, y = gaussian(rng, 200), gaussian(rng, 200, shift=0.1)
    assert drift_test(x, y, seed=11) == drift_test(x, y, seed=11)


def test_row_order_does_not_matter() -> None:
    rng = np.random.default_rng(9)
    x, y = gaussian(rng, 150), gaussian(rng, 170, shift=0.2)
    assert drift_test(x, y) == drift_test(x[::-1], rng.permutation(y))


def test_row_order_does_not_matter_when_subsampling() -> None:
    rng = np.random.default_rng(10)
    x, y = gaussian(rng, 700), gaussian(rng, 500)
    first = drift_test(x, y, max_rows=300, permutations=50)
    second = drift_test(rng.permutation(x), y[::-1], max_rows=300, permutations=50)
    assert first == second
    assert (first.n1, first.n2, first.rows_baseline, first.rows_current) == (300, 300, 700, 500)


def test_a_dimension_change_is_a_result_not_an_exception() -> None:
    rng = np.random.default_rng(11)
    result = drift_test(gaussian(rng, 50, d=8), gaussian(rng, 50, d=6))
    assert not result.comparable and result.alarm and result.severity == "error"
    assert result.reason is not None and "8" in result.reason and "6" in result.reason
    assert result.p_value is None
    json.dumps(result.to_evidence())


def test_evidence_holds_plain_json_types() -> None:
    rng = np.random.default_rng(12)
    evidence = drift_test(gaussian(rng, 60), gaussian(rng, 60, shift=1.0)).to_evidence()
    assert json.loads(json.dumps(evidence)) == evidence
    assert all(isinstance(v, str | int | float | bool | type(None)) for v in evidence.values())
    assert evidence["permutations"] == 200 and evidence["alpha"] == 0.01


def test_identical_constant_samples_do_not_alarm() -> None:
    x = np.ones((20, 5))
    result = drift_test(x, x.copy())
    assert not result.alarm and result.effect_size == 0.0


@pytest.mark.parametrize(
    ("baseline", "current", "message"),
    [
        (np.empty((0, 4)), np.ones((5, 4)), "0 rows"),
        (np.ones((5, 4)), np.ones((1, 4)), "1 rows"),
        (np.ones(4), np.ones((5, 4)), "2-D"),
        (np.array([["a", "b"], ["c", "d"]]), np.ones((5, 2)), "real numbers"),
        (np.ones((5, 4)), np.full((5, 4), np.nan), "NaN"),
        (np.ones((5, 4)), np.full((5, 4), np.inf), "infinite"),
    ],
)
def test_bad_input_is_an_invalid_input_error(
    baseline: np.ndarray, current: np.ndarray, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        drift_test(baseline, current)


def test_bad_parameters_are_invalid_input() -> None:
    x = np.ones((5, 3))
    with pytest.raises(InvalidInput, match="alpha"):
        drift_test(x, x, alpha=1.5)
    with pytest.raises(InvalidInput, match="permutations"):
        drift_test(x, x, permutations=0)
