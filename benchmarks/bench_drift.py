"""Detection quality and speed of the embedding drift test and the feature skew check.

Seeded synthetic worlds (`benchmarks/worlds.py`, no model downloads): per
labelled scenario, the false-positive rate over 200 trials (cases where no
alarm is right) or the detection rate over 50 trials (cases where one is), and
the runtime of the drift test on two collections of 100,000 x 768 float32
vectors (subsampling to 2,000 a side included).

Baseline, measured in the same run: one `X.mean(axis=0)` over one full
100,000 x 768 array, i.e. a single pass over the collection, the least that
any check reading the collection costs (the naive "compare the centroids"
check is two of them). The ratio says how many such passes the drift test is
worth.

    python -m benchmarks drift [--trials-scale=0.1] [--n=1000] [--rows=100000] [--seed=0]
    python -m benchmarks drift --real [--trials-scale=0.1]   (real models and text)

(`python -m benchmarks` passes only dash-arguments on: write `--opt=value`.)
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.common import report, timed
from benchmarks.worlds import World, embedding_pair, feature_pair
from lineage.drift import DEFAULT_ALPHA, drift_test
from lineage.skew import feature_skew

NULL_TRIALS = 200
DETECTION_TRIALS = 50
# (scenario, alarm expected, goal) -- goal: a ceiling for false positives, a
# floor for detection, None where the issue sets none (reported honestly).
EMBEDDING_CASES: list[tuple[str, bool, float | None]] = [
    ("fp16", False, DEFAULT_ALPHA + 0.03),
    ("int8", False, DEFAULT_ALPHA + 0.03),
    ("content_shift_small", True, None),
    ("content_shift_large", True, None),
    ("variance_collapse", True, 0.95),
    ("model_swap", True, 0.95),
    ("revision", True, 0.95),
    ("reindex_5", True, None),
    ("reindex_10", True, None),
    ("reindex_50", True, 0.95),
    ("offset", True, 0.95),
    ("dimension_change", True, None),
    ("normalisation_change", True, None),
]
SKEW_CASES: list[tuple[str, bool, float | None]] = [
    ("no_skew", False, DEFAULT_ALPHA + 0.03),
    ("no_skew_categorical", False, DEFAULT_ALPHA + 0.03),
    ("version_only", False, DEFAULT_ALPHA + 0.03),
    ("fill_value", True, None),
    ("category_code", True, None),
    ("stale_online", True, None),
]


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks drift", description=__doc__)
    parser.add_argument("--trials-scale", type=float, default=1.0, help="scale trial counts")
    parser.add_argument("--n", type=int, default=1_000, help="vectors a side per trial")
    parser.add_argument("--rows", type=int, default=100_000, help="rows for the timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--real",
        action="store_true",
        help="calibrate on real embeddings of a real corpus instead (benchmarks/drift_real.py)",
    )
    args = parser.parse_args(argv)
    if args.real:
        from benchmarks.drift_real import main as real_main

        real_main(args.trials_scale, args.seed)
        return
    null_trials = max(1, round(NULL_TRIALS * args.trials_scale))
    detection_trials = max(1, round(DETECTION_TRIALS * args.trials_scale))

    world = World(seed=args.seed)
    model = world.model(seed=0)
    _describe(world, args.seed)
    alpha = DEFAULT_ALPHA
    print(f"alpha {alpha}; drift test: 200 permutations, <= 2,000 vectors a side", flush=True)
    print(f"{'scenario':<28} {'n':>6} {'trials':>6}  {'rate':>6}  goal", flush=True)
    failures: list[str] = []

    def embedding_rate(scenario: str, n: int, trials: int) -> tuple[float, float]:
        rng = np.random.default_rng([args.seed, 100, n, len(scenario), sum(map(ord, scenario))])
        alarms, effects = 0, []
        for trial in range(trials):
            baseline, current = embedding_pair(world, model, scenario, n, rng)
            result = drift_test(baseline, current, alpha=alpha, seed=trial)
            alarms += result.alarm
            if result.effect_size is not None:
                effects.append(result.effect_size)
        return alarms / trials, statistics.median(effects) if effects else float("nan")

    for n in (100, 300, 1_000, 3_000):
        rate, effect = embedding_rate("no_drift", n, null_trials)
        failures += _line("no_drift", n, null_trials, rate, False, alpha + 0.03, effect)
    for scenario, expected, goal in EMBEDDING_CASES:
        trials = detection_trials if expected else null_trials
        rate, effect = embedding_rate(scenario, args.n, trials)
        failures += _line(scenario, args.n, trials, rate, expected, goal, effect)

    print("feature value skew (threshold 0.1, alpha 0.01, keyed share > 0.05)", flush=True)
    for scenario, expected, goal in SKEW_CASES:
        trials = detection_trials if expected else null_trials
        rng = np.random.default_rng([args.seed, 200, sum(map(ord, scenario))])
        alarms = 0
        for trial in range(trials):
            offline, online = feature_pair(scenario, args.n, rng)
            alarms += feature_skew(offline, online, seed=trial).alarm
        failures += _line(f"skew:{scenario}", args.n, trials, alarms / trials, expected, goal)

    _timing(world, model, args.rows, args.seed)
    if failures:
        print(f"goals missed: {', '.join(failures)}", flush=True)
    else:
        print("all detection goals met", flush=True)


def _describe(world: World, seed: int) -> None:
    model = world.model(seed=0)
    texts = world.texts(2_000, np.random.default_rng([seed, 7]))
    e = model.embed(texts)
    pair = float(np.mean(np.sum(e[:1_000] * e[1_000:], axis=1)))
    revised = world.revision(model, seed=1).embed(texts)
    same = float(np.mean(np.sum(e * revised, axis=1)))
    swapped = world.model(seed=1_000).embed(texts)
    swap = float(np.mean(np.sum(e * swapped, axis=1)))
    print(
        f"world: d={world.dim}, {world.n_topics} topics, latent {world.latent}; "
        f"random-pair cosine {pair:.3f}; same text, revision 2 vs 1: cosine {same:.3f}; "
        f"model swap: {swap:.3f}",
        flush=True,
    )


def _line(
    scenario: str,
    n: int,
    trials: int,
    rate: float,
    expected: bool,
    goal: float | None,
    effect: float | None = None,
) -> list[str]:
    label = "detection" if expected else "false-positive rate"
    if goal is None:
        verdict = "(no goal)"
    elif expected:
        verdict = f">= {goal:.2f} {'ok' if rate >= goal else 'MISSED'}"
    else:
        verdict = f"<= {goal:.3f} {'ok' if rate <= goal else 'MISSED'}"
    size = "" if effect is None or effect != effect else f"  median effect {effect:.3f}"
    print(f"{scenario:<28} {n:>6} {trials:>6}  {rate:6.3f}  {label} {verdict}{size}", flush=True)
    return [f"{scenario} n={n}"] if verdict.endswith("MISSED") else []


def _timing(world: World, model: object, rows: int, seed: int) -> None:
    from benchmarks.worlds import Model

    assert isinstance(model, Model)
    rng = np.random.default_rng([seed, 300])
    chunks = [model.embed(world.texts(10_000, rng)) for _ in range(max(1, rows // 10_000))]
    baseline_rows = np.concatenate(chunks)
    chunks = [model.embed(world.texts(10_000, rng)) for _ in range(max(1, rows // 10_000))]
    current_rows = np.concatenate(chunks)
    del chunks
    shape = f"{current_rows.shape[0]:,} x {current_rows.shape[1]}"
    means = [timed(lambda: current_rows.mean(axis=0))[0] for _ in range(5)]
    mean_time = statistics.median(means)
    report(f"baseline: X.mean(axis=0), {shape} float32", mean_time)
    runs = []
    for i in range(5):
        start = time.perf_counter()
        drift_test(baseline_rows, current_rows, seed=i)
        runs.append(time.perf_counter() - start)
    report(
        f"drift test, two collections of {shape}",
        statistics.median(runs),
        mean_time,
        note=f"median of 5; best {min(runs):.3f} s; goal < 1 s",
    )
    sample = current_rows[:2_000]
    small = [timed(lambda: drift_test(baseline_rows[:2_000], sample, seed=0))[0] for _ in range(3)]
    report("drift test, 2,000 x 768 a side (no subsampling)", statistics.median(small), mean_time)
