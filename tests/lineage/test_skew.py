"""Feature value skew: distances, the keyed comparison, the permutation gate."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.worlds import feature_pair
from catalog.errors import InvalidInput
from lineage.skew import (
    feature_skew,
    jensen_shannon_distance,
    key_mismatches,
    l_infinity_distance,
    psi,
    values_equal,
)


def amounts(rng: np.random.Generator, n: int, fill: float = 0.0) -> list[float]:
    values = rng.lognormal(3.0, 1.0, n)
    values[rng.random(n) < 0.1] = fill
    return [float(v) for v in values]


def test_a_different_fill_value_fires_and_the_clean_twin_stays_silent() -> None:
    rng = np.random.default_rng(0)
    offline = amounts(rng, 1_000)
    clean = feature_skew(offline, amounts(rng, 1_000))
    skewed = feature_skew(offline, amounts(rng, 1_000, fill=-1.0))
    assert clean.kind == "numeric" and clean.metric == "jensen_shannon"
    assert not clean.alarm and clean.severity is None and clean.distance < 0.1
    assert skewed.alarm and skewed.severity == "warning"
    assert skewed.distance > 0.1 and skewed.p_value < 0.01
    assert skewed.psi > clean.psi


def test_a_renamed_category_fires_and_the_clean_twin_stays_silent() -> None:
    rng = np.random.default_rng(1)
    offline, same = feature_pair("no_skew_categorical", 1_000, rng)
    _, renamed = feature_pair("category_code", 1_000, rng)
    clean = feature_skew(list(offline.values()), list(same.values()))
    skewed = feature_skew(list(offline.values()), list(renamed.values()))
    assert clean.kind == "categorical" and clean.metric == "l_infinity"
    assert not clean.alarm
    assert skewed.alarm and skewed.distance > 0.1


def test_stale_online_values_fire_through_the_share_of_keys() -> None:
    offline = {k: float(k) for k in range(200)}
    online = {k: (float(k) + 1 if k % 5 == 0 else float(k)) for k in range(200)}
    result = feature_skew(offline, online)
    assert result.shared_keys == 200 and result.mismatched_keys == 40
    assert result.mismatch_share == pytest.approx(0.2)
    assert result.alarm and any("shared keys" in r for r in result.reasons)
    assert result.mismatch_examples == ("0", "5", "10", "15", "20")
    assert not feature_skew(offline, dict(offline)).alarm


def test_values_compare_with_a_tolerance_and_missing_equals_missing() -> None:
    assert values_equal(float("nan"), float("nan"))
    assert values_equal(None, float("nan"))
    assert not values_equal(None, 0.0)
    assert values_equal(1 / 3, float(np.float32(1 / 3)))
    assert not values_equal(1.0, 1.001)
    assert values_equal("a", "a") and not values_equal("a", "b")
    assert values_equal(math.inf, math.inf) and not values_equal(math.inf, 1e308)
    shared, bad = key_mismatches({"a": 1, "b": None, "c": 3}, {"b": math.nan, "c": 4, "d": 0})
    assert shared == 2 and bad == ["c"]


def test_version_only_difference_is_silent() -> None:
    rng = np.random.default_rng(2)
    offline, online = feature_pair("version_only", 500, rng)
    both = {k: offline[k] for k in list(offline)[:300]}
    rounded = {k: float(np.float32(v)) for k, v in both.items()}
    result = feature_skew(both, rounded)
    assert result.mismatched_keys == 0 and not result.alarm
    assert not feature_skew(offline, online).alarm


def test_distances_are_symmetric() -> None:
    rng = np.random.default_rng(3)
    a, b = amounts(rng, 300), amounts(rng, 200, fill=-1.0)
    forth, back = feature_skew(a, b), feature_skew(b, a)
    assert forth.distance == pytest.approx(back.distance, abs=1e-12)
    p, q = [5, 3, 0, 2], [1, 1, 4, 4]
    assert jensen_shannon_distance(p, q) == pytest.approx(jensen_shannon_distance(q, p))
    assert l_infinity_distance(p, q) == pytest.approx(l_infinity_distance(q, p))
    assert psi(p, q) == pytest.approx(psi(q, p))


def test_distance_bounds() -> None:
    assert jensen_shannon_distance([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-7)
    assert jensen_shannon_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert l_infinity_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert psi([10, 10], [10, 10]) == pytest.approx(0.0)


def test_row_order_does_not_change_the_distance() -> None:
    rng = np.random.default_rng(4)
    a, b = amounts(rng, 300), amounts(rng, 300, fill=5.0)
    shuffled = [b[i] for i in rng.permutation(len(b))]
    first, second = feature_skew(a, b), feature_skew(a[::-1], shuffled)
    assert first.distance == pytest.approx(second.distance, abs=1e-12)
    assert first.psi == pytest.approx(second.psi, abs=1e-12)


def test_p_values_are_roughly_uniform_under_the_null() -> None:
    rng = np.random.default_rng(5)
    p_values = [
        feature_skew(amounts(rng, 80), amounts(rng, 80), seed=trial, permutations=100).p_value
        for trial in range(100)
    ]
    assert float(np.mean(np.array(p_values) < 0.05)) < 0.12


def test_small_samples_do_not_alarm_on_noise_alone() -> None:
    rng = np.random.default_rng(6)
    alarms = sum(feature_skew(amounts(rng, 30), amounts(rng, 30), seed=t).alarm for t in range(30))
    assert alarms <= 2


def test_the_result_is_reproducible_with_a_seed() -> None:
    rng = np.random.default_rng(7)
    a, b = amounts(rng, 200), amounts(rng, 200)
    assert feature_skew(a, b, seed=3) == feature_skew(a, b, seed=3)


def test_missing_values_are_their_own_bin() -> None:
    offline = [1.0, 2.0, 3.0, 4.0] * 50
    online = [1.0, 2.0, None, float("nan")] * 50
    result = feature_skew(offline, online)
    assert result.missing_offline == 0.0 and result.missing_online == 0.5
    assert result.alarm


def test_evidence_holds_plain_json_types() -> None:
    evidence = feature_skew({1: 1.0, 2: 2.0}, {1: 1.0, 2: 3.0}).to_evidence()
    assert json.loads(json.dumps(evidence)) == evidence
    assert evidence["threshold"] == 0.1 and evidence["mismatch_share"] == 0.5


def test_the_threshold_is_configurable() -> None:
    rng = np.random.default_rng(8)
    a, b = amounts(rng, 2_000), amounts(rng, 2_000, fill=-1.0)
    assert feature_skew(a, b).alarm
    assert not feature_skew(a, b, threshold=0.9).alarm


@pytest.mark.parametrize(
    ("offline", "online", "message"),
    [
        ([], [1.0], "offline sample is empty"),
        ([1.0], {}, "online sample is empty"),
        ("abc", [1.0], "not a string"),
        (5, [1.0], "not a sequence"),
    ],
)
def test_bad_input_is_an_invalid_input_error(offline: object, online: object, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        feature_skew(offline, online)  # type: ignore[arg-type]


def test_bad_parameters_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="threshold"):
        feature_skew([1.0], [1.0], threshold=2)
    with pytest.raises(InvalidInput, match="frequency vector"):
        jensen_shannon_distance([-1, 2], [1, 2])
    with pytest.raises(InvalidInput, match="not numbers"):
        feature_skew(["a", 1.0], [1.0], kind="numeric")
    with pytest.raises(InvalidInput, match="kind"):
        feature_skew([1.0], [1.0], kind="ordinal")  # type: ignore[arg-type]


def test_a_categorical_view_of_numbers_is_allowed() -> None:
    result = feature_skew([1, 2, 2, 3] * 30, [1, 2, 3, 3] * 30, kind="categorical")
    assert result.metric == "l_infinity" and result.distance == pytest.approx(0.25)
