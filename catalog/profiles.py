"""Baseline samples of vectors, kept compactly in the `profile` table.

A sample is stored as float16 bytes (row-major, `stats["shape"]`) with the
statistics the drift rule needs, computed on the float32 vectors before they
are rounded: sample count, population (points in the index), mean vector and
norm statistics. `take_baselines` is the post-scan step that samples the
collections which got a new version (or all of them with `--profile`).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sqlalchemy import Connection, insert, select
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from catalog.apply import Plan
from catalog.db import Store
from catalog.errors import StewardError
from catalog.models import Asset, AssetVersion, Profile, utcnow
from catalog.specs import AssetSpec

log = logging.getLogger(__name__)

KIND = "vector_sample"
DEFAULT_SAMPLE_SIZE = 2000
STORAGE_DTYPE = "float16"

PROFILE = Profile.__table__  # type: ignore[attr-defined]
ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]


@dataclass
class VectorSample:
    """Vectors drawn from one vector (`part`, '' for the only one) of an index."""

    part: str
    vectors: np.ndarray
    #: Points the sample was drawn from.
    population: int
    seed: int
    #: How the points were chosen: `ids` (uniform over the sorted point ids) or `random`.
    method: str = "ids"
    extra: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class VectorSampler(Protocol):
    """Optional ability of a connector: a reproducible sample of stored vectors."""

    def sample_vectors(self, asset_name: str, size: int, seed: int) -> list[VectorSample]: ...


def sample_seed(uri: str) -> int:
    """A stable seed per asset, so that a re-sample of unchanged data is the same sample."""
    return int.from_bytes(hashlib.sha256(uri.encode("utf-8")).digest()[:4], "big")


def choose(population: int, size: int, seed: int) -> np.ndarray:
    """Indices of a reproducible uniform sample without replacement, in draw order."""
    rng = np.random.default_rng(seed)
    if size >= population:
        return rng.permutation(population)
    return rng.choice(population, size=size, replace=False)


def _finite(value: float) -> float:
    return float(value) if np.isfinite(value) else 0.0


def vector_stats(vectors: np.ndarray) -> dict[str, Any]:
    """Count, dimension, mean vector and norm statistics of a sample (finite rows only)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        matrix = matrix.reshape(len(matrix), -1)
    finite = np.isfinite(matrix).all(axis=1)
    kept = matrix[finite]
    out: dict[str, Any] = {
        "count": len(kept),
        "dim": int(matrix.shape[1]) if matrix.size else 0,
        "non_finite": int((~finite).sum()),
    }
    if len(kept) == 0:
        return out
    norms = np.linalg.norm(kept.astype(np.float64), axis=1)
    mean = kept.astype(np.float64).mean(axis=0)
    out["mean"] = [round(_finite(v), 7) for v in mean]
    out["norm"] = {
        "mean": _finite(norms.mean()),
        "std": _finite(norms.std()),
        "min": _finite(norms.min()),
        "max": _finite(norms.max()),
        "p05": _finite(np.percentile(norms, 5)),
        "p50": _finite(np.percentile(norms, 50)),
        "p95": _finite(np.percentile(norms, 95)),
    }
    return out


def encode(vectors: np.ndarray) -> bytes:
    return np.ascontiguousarray(vectors, dtype=np.float16).tobytes()


def decode(data: bytes, stats: dict[str, Any]) -> np.ndarray:
    """The stored sample as a float32 matrix of `stats["shape"]`."""
    rows, dim = stats["shape"]
    return np.frombuffer(data, dtype=stats.get("format", STORAGE_DTYPE)).reshape(rows, dim)


def store_sample(
    conn: Connection, asset_id: int, version_id: int | None, sample: VectorSample
) -> int:
    """Insert one profile row for `sample`; returns its id."""
    matrix = np.asarray(sample.vectors, dtype=np.float32)
    if matrix.ndim != 2:
        matrix = matrix.reshape(len(matrix), -1)
    matrix = matrix[np.isfinite(matrix).all(axis=1)] if matrix.size else matrix
    stats = vector_stats(sample.vectors)
    stats.update(
        {
            "format": STORAGE_DTYPE,
            "shape": [int(matrix.shape[0]), int(matrix.shape[1]) if matrix.ndim == 2 else 0],
            "population": sample.population,
            "seed": sample.seed,
            "method": sample.method,
            **sample.extra,
        }
    )
    result = conn.execute(
        insert(PROFILE).returning(PROFILE.c.id),
        {
            "asset_id": asset_id,
            "version_id": version_id,
            "kind": KIND,
            "part": sample.part,
            "stats": stats,
            "data": encode(matrix),
            "created_at": utcnow(),
        },
    )
    return int(result.scalar_one())


@dataclass
class StoredSample:
    """A vector sample read back from the catalog."""

    id: int
    asset_id: int
    version: int | None
    part: str
    stats: dict[str, Any]
    created_at: Any
    data: bytes | None

    @property
    def vectors(self) -> np.ndarray:
        if not self.data:
            return np.zeros((0, int(self.stats.get("dim", 0))), dtype=np.float32)
        return decode(self.data, self.stats).astype(np.float32)


def samples_of(
    session: Session, asset_id: int, part: str | None = None, with_data: bool = True
) -> list[StoredSample]:
    """Every vector sample of an asset (optionally of one part), oldest first."""
    query = (
        sm_select(Profile, AssetVersion.version)
        .join(AssetVersion, col(AssetVersion.id) == col(Profile.version_id), isouter=True)
        .where(Profile.asset_id == asset_id)
        .where(Profile.kind == KIND)
        .order_by(col(Profile.created_at), col(Profile.id))
    )
    if part is not None:
        query = query.where(Profile.part == part)
    return [
        StoredSample(
            id=p.id or 0,
            asset_id=p.asset_id,
            version=version,
            part=p.part,
            stats=p.stats,
            created_at=p.created_at,
            data=p.data if with_data else None,
        )
        for p, version in session.exec(query).all()
    ]


def with_baseline(conn: Connection, uris: Sequence[str]) -> set[str]:
    """The assets among `uris` that have a vector sample of their current version."""
    found: set[str] = set()
    for start in range(0, len(uris), 900):
        rows = conn.execute(
            select(ASSET.c.uri)
            .join(VERSION, VERSION.c.asset_id == ASSET.c.id)
            .join(PROFILE, PROFILE.c.version_id == VERSION.c.id)
            .where(VERSION.c.version == ASSET.c.current_version)
            .where(PROFILE.c.kind == KIND)
            .where(ASSET.c.uri.in_(uris[start : start + 900]))
        )
        found.update(row.uri for row in rows)
    return found


def baseline_targets(
    store: Store,
    plan: Plan,
    specs: Sequence[AssetSpec],
    force: bool,
    kinds: Iterable[str] = ("collection",),
) -> list[AssetSpec]:
    """The specs to sample: all when forced, else those whose current version has no sample.

    That is every asset that got a new version, and one that had no vectors
    to sample when its version was made (a collection created empty, then filled).
    """
    wanted = set(kinds)
    candidates = [s for s in specs if s.kind in wanted]
    if force:
        return candidates
    fresh = {c.uri for c in plan.changes if c.action in ("create", "update", "restore")}
    with store.engine.connect() as conn:
        sampled = with_baseline(conn, [s.uri for s in candidates if s.uri not in fresh])
    return [s for s in candidates if s.uri in fresh or s.uri not in sampled]


def take_baselines(
    store: Store,
    sampler: VectorSampler,
    targets: Sequence[AssetSpec],
    size: int = DEFAULT_SAMPLE_SIZE,
    on_sample: Callable[[str, VectorSample], None] | None = None,
) -> list[dict[str, Any]]:
    """Sample each target's vectors and keep the samples, tied to its current version."""
    drawn: list[tuple[AssetSpec, VectorSample]] = []
    for spec in targets:
        try:
            samples = sampler.sample_vectors(spec.name, size, sample_seed(spec.uri))
        except StewardError as err:  # e.g. dropped since the scan: the others still count
            log.warning("no baseline sample of %s: %s", spec.uri, err)
            continue
        for sample in samples:
            if len(sample.vectors) == 0:
                continue
            drawn.append((spec, sample))
            if on_sample is not None:
                on_sample(spec.uri, sample)
    out: list[dict[str, Any]] = []
    if not drawn:
        return out
    with store.write() as conn:
        uris = sorted({spec.uri for spec, _ in drawn})
        current = {
            row.uri: (row.id, row.version_id)
            for row in conn.execute(
                select(ASSET.c.id, ASSET.c.uri, VERSION.c.id.label("version_id"))
                .join(
                    VERSION,
                    (VERSION.c.asset_id == ASSET.c.id)
                    & (VERSION.c.version == ASSET.c.current_version),
                    isouter=True,
                )
                .where(ASSET.c.uri.in_(uris))
            )
        }
        for spec, sample in drawn:
            if spec.uri not in current:
                continue
            asset_id, version_id = current[spec.uri]
            profile_id = store_sample(conn, asset_id, version_id, sample)
            out.append(
                {
                    "uri": spec.uri,
                    "part": sample.part,
                    "vectors": len(sample.vectors),
                    "population": sample.population,
                    "profile_id": profile_id,
                }
            )
    return out
