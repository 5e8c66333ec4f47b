"""Seeded synthetic embedding "worlds" and feature samples for the drift/skew benchmark.

No model downloads: a world is

- *texts*: a topic (one of `topics`) plus residual. A text is a latent vector
  `z = centroid[topic] + noise` in `latent` dimensions and a private
  `d`-dimensional residual `u` (what no two texts share);
- a *model*: a fixed random affine map `a = z W + bias + eta * (signs * u)`,
  scaled, then normalised to unit length. `bias` is a common direction whose
  length is calibrated so that two random texts have cosine about 0.3 (the
  anisotropy of real sentence-embedding models);
- a *revision* of a model: the same map with `W` and `bias` perturbed by a
  random map of relative size `eps`, calibrated so that the same text
  embedded by both revisions has cosine about 0.98.

Everything is a pure function of the seeds. The scenario helpers at the end
build the labelled cases the benchmark and the tests use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]

# Shares of the per-text variance (before the common direction): topic,
# within-topic, private residual.
TOPIC_SHARE, WITHIN_SHARE, RESIDUAL_SHARE = 0.4, 0.4, 0.2


@dataclass(frozen=True)
class Texts:
    """A sample of texts: their topics, latent codes and private residuals."""

    topics: npt.NDArray[np.int64]
    latent: Matrix
    residual: Matrix

    def __len__(self) -> int:
        return int(self.topics.shape[0])


@dataclass(frozen=True)
class Model:
    """A fixed random embedding model (one revision of it)."""

    name: str
    seed: int
    weights: Matrix  # latent x d
    bias: Matrix  # d
    signs: Matrix  # d, +-1
    eta: float
    scale: float = 8.0  # raw output norm, as un-normalised models have
    normalise: bool = True

    @property
    def dim(self) -> int:
        return int(self.weights.shape[1])

    def embed(self, texts: Texts) -> Matrix:
        if texts.residual.shape[1] < self.dim:
            raise ValueError("texts carry a residual shorter than the model's dimension")
        raw = texts.latent @ self.weights + self.bias
        raw += self.eta * texts.residual[:, : self.dim] * self.signs
        raw *= self.scale
        if self.normalise:
            raw /= np.linalg.norm(raw, axis=1, keepdims=True)
        return raw.astype(np.float32)


class World:
    """Topics in a latent space, and models and revisions over it."""

    def __init__(self, seed: int = 0, dim: int = 768, latent: int = 128, topics: int = 20) -> None:
        self.seed = seed
        self.dim = dim
        self.latent = latent
        self.n_topics = topics
        rng = np.random.default_rng([seed, 1])
        self.centroids = (
            rng.standard_normal((topics, latent)) * np.sqrt(TOPIC_SHARE / latent)
        ).astype(np.float32)
        self.within = float(np.sqrt(WITHIN_SHARE / latent))
        self.offset_direction = _unit(rng.standard_normal(dim)).astype(np.float32)
        self._models: dict[tuple[int, int, float], Model] = {}
        self._revisions: dict[tuple[str, int, float], Model] = {}

    def texts(self, n: int, rng: np.random.Generator, mix: npt.ArrayLike | None = None) -> Texts:
        """`n` fresh texts; `mix` is the topic distribution (uniform by default)."""
        p = None if mix is None else np.asarray(mix, dtype=np.float64) / np.sum(mix)
        topics = rng.choice(self.n_topics, size=n, p=p)
        latent = self.centroids[topics] + rng.standard_normal(
            (n, self.latent), dtype=np.float32
        ) * np.float32(self.within)
        residual = rng.standard_normal((n, self.dim), dtype=np.float32)
        return Texts(topics=topics.astype(np.int64), latent=latent, residual=residual)

    def model(self, seed: int, dim: int | None = None, cosine: float = 0.3) -> Model:
        """A random model whose random text pairs have mean cosine about `cosine` (cached)."""
        d = dim or self.dim
        if (seed, d, cosine) not in self._models:
            self._models[seed, d, cosine] = self._model(seed, d, cosine)
        return self._models[seed, d, cosine]

    def _model(self, seed: int, d: int, cosine: float) -> Model:
        rng = np.random.default_rng([self.seed, 2, seed])
        weights = (rng.standard_normal((self.latent, d)) / np.sqrt(d)).astype(np.float32)
        direction = _unit(rng.standard_normal(d)).astype(np.float32)
        signs = rng.choice(np.array([-1.0, 1.0], dtype=np.float32), size=d)
        eta = float(np.sqrt(RESIDUAL_SHARE / d))
        base = Model(f"model-{seed}", seed, weights, direction * 0, signs, eta)
        probe = self.texts(600, np.random.default_rng([self.seed, 3]))

        def mean_cos(length: float) -> float:
            return _pair_cosine(replace(base, bias=direction * np.float32(length)), probe)

        length = _bisect(mean_cos, cosine, 0.0, 10.0)
        return replace(base, bias=direction * np.float32(length))

    def revision(self, model: Model, seed: int, cosine: float = 0.98) -> Model:
        """`model` with its map perturbed so the same text keeps cosine about `cosine` (cached)."""
        key = (model.name, seed, cosine)
        if key not in self._revisions:
            self._revisions[key] = self._revision(model, seed, cosine)
        return self._revisions[key]

    def _revision(self, model: Model, seed: int, cosine: float) -> Model:
        rng = np.random.default_rng([self.seed, 4, seed])
        d = model.dim
        d_weights = (rng.standard_normal((self.latent, d)) / np.sqrt(d)).astype(np.float32)
        d_bias = (_unit(rng.standard_normal(d)) * np.linalg.norm(model.bias)).astype(np.float32)
        probe = self.texts(600, np.random.default_rng([self.seed, 5]))
        before = model.embed(probe)

        def perturbed(eps: float) -> Model:
            return replace(
                model,
                name=f"{model.name}@r{seed}",
                weights=model.weights + np.float32(eps) * d_weights,
                bias=model.bias + np.float32(eps) * d_bias,
            )

        def same_text_cos(eps: float) -> float:
            after = perturbed(eps).embed(probe)
            return -float(np.mean(np.sum(before * after, axis=1)))

        eps = _bisect(same_text_cos, -cosine, 0.0, 2.0)
        return perturbed(eps)


def _unit(v: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    result: npt.NDArray[np.float64] = v / np.linalg.norm(v)
    return result


def _pair_cosine(model: Model, texts: Texts) -> float:
    e = model.embed(texts)
    half = len(texts) // 2
    return float(np.mean(np.sum(e[:half] * e[half : 2 * half], axis=1)))


def _bisect(
    fn: Callable[[float], float], target: float, lo: float, hi: float, steps: int = 30
) -> float:
    """x in [lo, hi] with fn(x) ~ target, for fn increasing."""
    for _ in range(steps):
        mid = (lo + hi) / 2
        if fn(mid) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


# -- storage ----------------------------------------------------------------------------


def as_fp16(vectors: npt.ArrayLike) -> npt.NDArray[np.float16]:
    """Vectors as stored in half precision."""
    return np.asarray(vectors).astype(np.float16)


def as_int8(vectors: npt.ArrayLike) -> Matrix:
    """Vectors stored as int8 with one scale per vector (symmetric), then dequantised."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scale = np.abs(vectors).max(axis=1, keepdims=True) / 127
    scale[scale == 0] = 1
    codes = np.clip(np.round(vectors / scale), -127, 127).astype(np.int8)
    result: Matrix = (codes.astype(np.float32) * scale).astype(np.float32)
    return result


# -- embedding scenarios -----------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """A labelled case: `drift` says whether an alarm is the right answer."""

    name: str
    drift: bool
    n: int = 1_000


def embedding_pair(
    world: World, model: Model, scenario: str, n: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.generic], npt.NDArray[np.generic]]:
    """Baseline and current samples of `n` vectors each for a named scenario.

    The baseline is always `n` fresh texts embedded by `model`. Names:
    no_drift, content_shift_small, content_shift_large, variance_collapse,
    model_swap, revision, reindex_5, reindex_10, reindex_50, offset, fp16, int8,
    dimension_change, normalisation_change.
    """
    baseline = model.embed(world.texts(n, rng))
    texts = world.texts(n, rng)
    uniform = np.full(world.n_topics, 1 / world.n_topics)
    if scenario == "no_drift":
        return baseline, model.embed(texts)
    if scenario in ("content_shift_small", "content_shift_large"):
        moved = 0.1 if scenario == "content_shift_small" else 0.5
        mix = (1 - moved) * uniform
        mix[:2] += moved / 2
        return baseline, model.embed(world.texts(n, rng, mix))
    if scenario == "variance_collapse":
        reference = _reference_mean(world, model)
        current = model.embed(texts)
        return baseline, (reference + 0.7 * (current - reference)).astype(np.float32)
    if scenario == "model_swap":
        return baseline, world.model(seed=_other_seed(model)).embed(texts)
    if scenario == "revision":
        return baseline, world.revision(model, seed=1).embed(texts)
    if scenario.startswith("reindex_"):
        share = int(scenario.removeprefix("reindex_")) / 100
        current = model.embed(texts)
        redone = rng.random(n) < share
        current[redone] = world.revision(model, seed=1).embed(_take(texts, redone))
        return baseline, current
    if scenario == "offset":
        current = model.embed(texts) + np.float32(0.05) * world.offset_direction
        return baseline, current.astype(np.float32)
    if scenario == "fp16":
        return baseline, as_fp16(model.embed(texts))
    if scenario == "int8":
        return baseline, as_int8(model.embed(texts))
    if scenario == "dimension_change":
        return baseline, world.model(seed=_other_seed(model), dim=model.dim // 2).embed(texts)
    if scenario == "normalisation_change":
        return baseline, replace(model, normalise=False).embed(texts)
    raise ValueError(f"unknown scenario {scenario!r}")


_REFERENCE: dict[tuple[int, str], Matrix] = {}


def _reference_mean(world: World, model: Model) -> Matrix:
    """The population mean of `model` over `world` (20,000 texts, cached)."""
    key = (world.seed, model.name)
    if key not in _REFERENCE:
        texts = world.texts(20_000, np.random.default_rng([world.seed, 6]))
        _REFERENCE[key] = model.embed(texts).mean(axis=0)
    return _REFERENCE[key]


def _other_seed(model: Model) -> int:
    return model.seed + 1_000


def _take(texts: Texts, mask: npt.NDArray[np.bool_]) -> Texts:
    return Texts(texts.topics[mask], texts.latent[mask], texts.residual[mask])


# -- feature samples --------------------------------------------------------------------


def feature_pair(
    scenario: str, n: int, rng: np.random.Generator
) -> tuple[dict[int, Any], dict[int, Any]]:
    """Offline and online samples of one feature, keyed by entity id.

    The offline side is `n` entities drawn from 10 * n; the online side another
    `n` drawn independently (so about 10 % of keys are shared, and the two
    value distributions differ by sampling alone). Names: no_skew (numeric),
    no_skew_categorical, fill_value (offline fills missing with 0, online with
    -1), category_code (online writes "GB" where offline wrote "UK"),
    version_only (a new version of the feature set, same code: online stores
    float32), stale_online (online holds an older value for 30 % of keys).
    """
    population = 10 * n
    amount = rng.lognormal(3.0, 1.0, population)
    missing = rng.random(population) < 0.1
    countries = np.array(["US", "UK", "DE", "FR", "JP", "IN", "BR", "CA"])
    country = countries[
        rng.choice(8, size=population, p=[0.3, 0.15, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05])
    ]
    off_keys = rng.choice(population, size=n, replace=False)
    on_keys = rng.choice(population, size=n, replace=False)

    def numeric(keys: npt.NDArray[np.int64], fill: float) -> dict[int, float]:
        return {int(k): (fill if missing[k] else float(amount[k])) for k in keys}

    if scenario == "no_skew":
        return numeric(off_keys, 0.0), numeric(on_keys, 0.0)
    if scenario == "fill_value":
        return numeric(off_keys, 0.0), numeric(on_keys, -1.0)
    if scenario == "version_only":
        online = {k: float(np.float32(v)) for k, v in numeric(on_keys, 0.0).items()}
        return numeric(off_keys, 0.0), online
    if scenario == "stale_online":
        online = numeric(on_keys, 0.0)
        for k in on_keys:
            value = online[int(k)]
            if rng.random() < 0.3 and value != 0.0:
                online[int(k)] = value * float(np.exp(rng.normal(0.0, 0.3)))
        return numeric(off_keys, 0.0), online
    if scenario in ("no_skew_categorical", "category_code"):
        labels = {int(k): str(country[k]) for k in off_keys}
        renamed = {"UK": "GB"} if scenario == "category_code" else {}
        served = {int(k): renamed.get(str(country[k]), str(country[k])) for k in on_keys}
        return labels, served
    raise ValueError(f"unknown feature scenario {scenario!r}")
