"""Samples of vectors, kept compactly in the `profile` table.

A sample is stored as float16 bytes (row-major, `stats["shape"]`) with the
statistics the drift rule needs, computed on the float32 vectors before they
are rounded: sample count, population (points in the index), mean vector and
norm statistics, and what drawing it cost (`seconds`). `take_baselines` is
the post-scan step: every scan of a vector store samples each vector part of
each index (a small uniform sample, `DEFAULT_SAMPLE_SIZE`; `--profile` a
larger one). The first sample of a part is its baseline (`role`), later ones
are routine samples the drift rule compares with it; only the newest routine
sample is kept, and an unchanged one is not written again. `rebaseline`
makes the newest sample the baseline, recorded with who and when.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sqlalchemy import Connection, delete, insert, select, update
from sqlmodel import Session, col
from sqlmodel import select as sm_select

from catalog.db import Store
from catalog.errors import InvalidInput, NotFound, StewardError
from catalog.models import Asset, AssetVersion, Finding, Profile, utcnow
from catalog.specs import AssetSpec

log = logging.getLogger(__name__)

KIND = "vector_sample"
#: Vectors in the sample every scan takes (`--sample-size`).
DEFAULT_SAMPLE_SIZE = 1000
#: Vectors in the larger sample of `scan --profile` (the drift test reads at most 2,000 a side).
PROFILE_SAMPLE_SIZE = 2000
#: A sample's role: the baseline later samples are compared with, or a routine one.
BASELINE, CHECK = "baseline", "check"
STORAGE_DTYPE = "float16"

PROFILE = Profile.__table__  # type: ignore[attr-defined]
ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
FINDING = Finding.__table__  # type: ignore[attr-defined]


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


def sample_digest(vectors: np.ndarray) -> str:
    """A digest of a sample as stored (float16): equal digests, equal samples."""
    return hashlib.sha256(encode(np.asarray(vectors, dtype=np.float32))).hexdigest()[:32]


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


def sample_targets(specs: Sequence[AssetSpec]) -> list[AssetSpec]:
    """The specs with at least one vector field: what every scan samples."""
    return [s for s in specs if any(f.attributes.get("vector") for f in s.fields)]


def _latest(conn: Connection, asset_id: int, part: str) -> tuple[int, dict[str, Any]] | None:
    row = conn.execute(
        select(PROFILE.c.id, PROFILE.c.stats)
        .where(PROFILE.c.asset_id == asset_id)
        .where(PROFILE.c.kind == KIND)
        .where(PROFILE.c.part == part)
        .order_by(PROFILE.c.id.desc())
        .limit(1)
    ).first()
    return (row.id, row.stats or {}) if row is not None else None


def _keep_one_check(conn: Connection, asset_id: int, part: str, keep: int) -> None:
    """Drop the earlier routine samples of a part: baselines and the newest one stay."""
    rows = conn.execute(
        select(PROFILE.c.id, PROFILE.c.stats)
        .where(PROFILE.c.asset_id == asset_id)
        .where(PROFILE.c.kind == KIND)
        .where(PROFILE.c.part == part)
        .where(PROFILE.c.id != keep)
    ).all()
    old = [r.id for r in rows if (r.stats or {}).get("role") == CHECK]
    if old:
        conn.execute(delete(PROFILE).where(PROFILE.c.id.in_(old)))


def take_baselines(
    store: Store,
    sampler: VectorSampler,
    targets: Sequence[AssetSpec],
    size: int = DEFAULT_SAMPLE_SIZE,
    on_sample: Callable[[str, VectorSample], None] | None = None,
    *,
    rebaseline: bool = False,
    by: str = "",
) -> list[dict[str, Any]]:
    """Sample each target's vectors; keep what the drift rule compares.

    The first sample of a vector part is its baseline; later ones are routine
    samples (`check`), of which only the newest is kept, and none is written
    when it equals the newest one (an unchanged index costs no row). With
    `rebaseline`, the new samples become the baselines, recorded with `by`
    and the time. Each result says what the sample cost (`seconds`).
    """
    drawn: list[tuple[AssetSpec, VectorSample, float]] = []
    for spec in targets:
        started = time.perf_counter()
        try:
            samples = sampler.sample_vectors(spec.name, size, sample_seed(spec.uri))
        except StewardError as err:  # e.g. dropped since the scan: the others still count
            log.warning("no sample of %s: %s", spec.uri, err)
            continue
        seconds = round(time.perf_counter() - started, 4)
        for sample in samples:
            if len(sample.vectors) == 0:
                continue
            drawn.append((spec, sample, seconds))
            if on_sample is not None:
                on_sample(spec.uri, sample)
    out: list[dict[str, Any]] = []
    if not drawn:
        return out
    with store.write() as conn:
        uris = sorted({spec.uri for spec, _, _ in drawn})
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
        for spec, sample, seconds in drawn:
            if spec.uri not in current:
                continue
            asset_id, version_id = current[spec.uri]
            latest = _latest(conn, asset_id, sample.part)
            role = BASELINE if rebaseline or latest is None else CHECK
            digest = sample_digest(sample.vectors)
            extra: dict[str, Any] = {"role": role, "digest": digest, "seconds": seconds}
            if rebaseline:
                extra.update(rebaselined_by=by, rebaselined_at=utcnow().isoformat())
            unchanged = role == CHECK and latest is not None and latest[1].get("digest") == digest
            profile_id = None
            if not unchanged:
                sample.extra = {**sample.extra, **extra}
                profile_id = store_sample(conn, asset_id, version_id, sample)
                if role == CHECK:
                    _keep_one_check(conn, asset_id, sample.part, profile_id)
            out.append(
                {
                    "uri": spec.uri,
                    "part": sample.part,
                    "vectors": len(sample.vectors),
                    "population": sample.population,
                    "method": sample.method,
                    "seconds": seconds,
                    "role": role,
                    "stored": not unchanged,
                    "profile_id": profile_id,
                }
            )
    return out


def rebaseline(
    store: Store, asset_id: int, part: str | None = None, by: str = ""
) -> list[dict[str, Any]]:
    """Make the newest sample of each vector part (or of `part`) its baseline.

    Writes a copy of that sample marked as the baseline, with who and when;
    the drift rule then compares later samples with it. Returns what was
    re-baselined (part, vectors, the sample's time).
    """
    now = utcnow()
    out: list[dict[str, Any]] = []
    with store.write() as conn:
        query = (
            select(PROFILE)
            .where(PROFILE.c.asset_id == asset_id)
            .where(PROFILE.c.kind == KIND)
            .order_by(PROFILE.c.id)
        )
        if part is not None:
            query = query.where(PROFILE.c.part == part)
        newest = {row.part: row for row in conn.execute(query)}
        for name, row in sorted(newest.items()):
            stats = {
                **(row.stats or {}),
                "role": BASELINE,
                "rebaselined_by": by,
                "rebaselined_at": now.isoformat(),
                "from_profile": row.id,
            }
            conn.execute(
                insert(PROFILE),
                {
                    "asset_id": asset_id,
                    "version_id": row.version_id,
                    "kind": KIND,
                    "part": name,
                    "stats": stats,
                    "data": row.data,
                    "created_at": now,
                },
            )
            out.append(
                {
                    "part": name,
                    "vectors": (stats.get("shape") or [0])[0],
                    "sampled_at": str(row.created_at),
                }
            )
    return out


def rebaseline_asset(
    store: Store, asset_ref: str, part: str | None = None, by: str = ""
) -> dict[str, Any]:
    """`steward models rebaseline`: re-baseline an index and close its open drift findings.

    The findings are resolved now (the next `steward check` agrees, since the
    newest sample is then the baseline itself).
    """
    from catalog.queries import resolve

    with store.session() as session:
        asset = resolve(session, asset_ref)
        asset_id, uri = asset.id, asset.uri
        known = sorted({s.part for s in samples_of(session, asset.id or 0, with_data=False)})
    if not known:
        raise NotFound(
            f"{uri} has no vector sample to make a baseline of",
            hint=f"scan its source first: steward scan URL (it samples {uri})",
        )
    if part is not None and part not in known:
        raise InvalidInput(f"{uri} has no sampled vector part '{part}'", hint=f"parts: {known}")
    assert asset_id is not None
    done = rebaseline(store, asset_id, part, by)
    now = utcnow()
    with store.write() as conn:
        rows = conn.execute(
            select(FINDING.c.id, FINDING.c.assets, FINDING.c.evidence)
            .where(FINDING.c.rule == "embedding_drift")
            .where(FINDING.c.status == "open")
        ).all()
        closed = [
            r.id
            for r in rows
            if (r.assets or [None])[0] == uri
            and (part is None or (r.evidence or {}).get("part") == part)
        ]
        if closed:
            conn.execute(
                update(FINDING)
                .where(FINDING.c.id.in_(closed))
                .values(status="resolved", resolved_at=now)
            )
    return {"asset": uri, "by": by, "at": now.isoformat(), "parts": done, "resolved": closed}
