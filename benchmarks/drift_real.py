"""`python -m benchmarks drift --real`: the drift test on real embeddings and real text.

The corpus and the models are those of `benchmarks.real_corpus` (the Python
stdlib's documentation, the Debian licence texts; all-MiniLM-L6-v2 and
multilingual-e5-small, both 384-d). Per trial, the documentation paragraphs
are split at random into a baseline half and a current half (so no vector is
in both samples), `n` vectors are drawn from each, and the current side is
then changed per scenario:

- `clean`: nothing (the twin: another sample of the same index content);
- `model_swap`: every current vector is the other model's embedding;
- `reindex_P`: P% of the current vectors are the other model's (a partial reindex);
- `content_P`: P% of the current vectors are licence paragraphs (same model).

Each scenario reports the alarm rate over its trials, the share of trials
at each severity, and the median effect size and spread ratio, for both
models as the one the index was built with. The false-positive rate of the
clean twins is to stay within the stated alpha (0.01, plus the sampling
error of the trials); every change is to be detected at every `n`.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from benchmarks.real_corpus import MODELS, docs_texts, embed_python, embeddings, licence_texts
from lineage.drift import DEFAULT_ALPHA, drift_test

SCENARIOS: list[tuple[str, str, float]] = [
    ("clean", "none", 0.0),
    ("model_swap", "model", 1.0),
    ("reindex_10", "model", 0.1),
    ("reindex_30", "model", 0.3),
    ("reindex_50", "model", 0.5),
    ("content_5", "content", 0.05),
    ("content_20", "content", 0.2),
    ("content_50", "content", 0.5),
]
SIZES = (150, 600)
NULL_TRIALS, DETECTION_TRIALS = 200, 40


def load() -> dict[str, dict[str, np.ndarray]] | None:
    """{model: {"docs": ..., "licences": ...}}, or None when the models are missing."""
    docs, licences = docs_texts(), licence_texts()
    python = None
    out: dict[str, dict[str, np.ndarray]] = {}
    for model in MODELS:
        found = {}
        for name, texts in (("docs", docs), ("licences", licences)):
            vectors = embeddings(model, texts, python)
            if vectors is None:
                python = python or embed_python()
                if python is None:
                    return None
                vectors = embeddings(model, texts, python)
            assert vectors is not None
            found[name] = vectors
        out[model] = found
    return out


def pair(
    data: dict[str, dict[str, np.ndarray]],
    model: str,
    other: str,
    kind: str,
    share: float,
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    docs = data[model]["docs"]
    order = rng.permutation(len(docs))
    half = len(docs) // 2
    base_ids = rng.choice(order[:half], size=min(n, half), replace=False)
    cur_ids = rng.choice(order[half:], size=min(n, len(docs) - half), replace=False)
    baseline, current = docs[base_ids], docs[cur_ids].copy()
    changed = rng.random(len(cur_ids)) < share if share < 1 else np.ones(len(cur_ids), bool)
    if kind == "model":
        current[changed] = data[other]["docs"][cur_ids[changed]]
    elif kind == "content":
        licences = data[model]["licences"]
        k = int(changed.sum())
        current[changed] = licences[rng.choice(len(licences), size=k, replace=k > len(licences))]
    return baseline, current


def main(trials_scale: float = 1.0, seed: int = 0) -> None:
    started = time.perf_counter()
    data = load()
    if data is None:
        print(
            "drift --real: skipped: the embedding models are not installed. Install them in an "
            "environment of their own (see benchmarks/real_corpus.py) and set "
            "$STEWARD_EMBED_PYTHON to its python, or put cached embeddings in "
            "$STEWARD_EMBED_CACHE.",
            flush=True,
        )
        return
    loaded = time.perf_counter() - started
    sizes = {m: {k: v.shape[0] for k, v in d.items()} for m, d in data.items()}
    print(f"real corpus: {sizes}; embeddings loaded in {loaded:.1f} s", flush=True)
    print(
        f"alpha {DEFAULT_ALPHA}; baseline and current from disjoint halves of the docs",
        flush=True,
    )
    header = (
        f"{'index built with':<24} {'scenario':<12} {'n':>4} {'trials':>6} {'alarm':>6} "
        f"{'warning':>7} {'error':>6} {'effect':>7} {'spread':>7}  goal"
    )
    print(header, flush=True)
    missed: list[str] = []
    models = list(MODELS)
    for model in models:
        other = models[1 - models.index(model)]
        for scenario, kind, share in SCENARIOS:
            trials = max(
                1, round((NULL_TRIALS if kind == "none" else DETECTION_TRIALS) * trials_scale)
            )
            for n in SIZES:
                rng = np.random.default_rng([seed, n, sum(map(ord, model + scenario))])
                missed += _run(model, other, scenario, kind, share, n, trials, rng, data)
    print(f"total {time.perf_counter() - started:.1f} s", flush=True)
    print(f"goals missed: {', '.join(missed)}" if missed else "all goals met", flush=True)


def _run(
    model: str,
    other: str,
    scenario: str,
    kind: str,
    share: float,
    n: int,
    trials: int,
    rng: np.random.Generator,
    data: dict[str, dict[str, np.ndarray]],
) -> list[str]:
    severities: dict[str | None, int] = {None: 0, "warning": 0, "error": 0}
    effects, spreads = [], []
    for trial in range(trials):
        baseline, current = pair(data, model, other, kind, share, n, rng)
        result = drift_test(baseline, current, seed=trial)
        severities[result.severity if result.alarm else None] += 1
        effects.append(result.effect_size or 0.0)
        spreads.append(result.spread_ratio or 0.0)
    alarm = 1 - severities[None] / trials
    goal: Callable[[float], bool]
    if kind == "none":
        limit = DEFAULT_ALPHA + 2 * (DEFAULT_ALPHA * (1 - DEFAULT_ALPHA) / trials) ** 0.5
        text, goal = f"<= {limit:.3f}", lambda rate: rate <= limit
    else:
        text, goal = (
            "== 1.00" if scenario == "model_swap" else "(reported)",
            ((lambda rate: rate >= 1.0) if scenario == "model_swap" else (lambda rate: True)),
        )
    ok = goal(alarm)
    print(
        f"{model:<24} {scenario:<12} {n:>4} {trials:>6} {alarm:6.3f} "
        f"{severities['warning'] / trials:7.3f} {severities['error'] / trials:6.3f} "
        f"{statistics.median(effects):7.3f} {statistics.median(spreads):7.3f}  "
        f"{text}{'' if ok else ' MISSED'}",
        flush=True,
    )
    return [] if ok else [f"{model} {scenario} n={n}"]
