"""Feature value samples: an offline (training) and an online (serving) side.

Stored as `Profile` rows of kind `offline_sample` / `online_sample` on the
feature set's current version: the rows (keyed by entity columns) gzipped as
canonical JSON, and per-feature summary statistics beside them. The
value-skew rule reads both sides back with `load_feature_samples`.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert
from sqlmodel import Session, col, select

from catalog.errors import InvalidInput, NotFound
from catalog.models import Asset, AssetVersion, Profile, utcnow

SIDES = ("offline", "online")
#: Rows kept per side; larger samples are subsampled reproducibly.
MAX_ROWS = 50_000
PROFILE = Profile.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FeatureSample:
    """One side's sample: entity key columns and feature columns, row-aligned."""

    side: str
    keys: dict[str, list[Any]]
    features: dict[str, list[Any]]

    @property
    def rows(self) -> int:
        columns = list(self.keys.values()) + list(self.features.values())
        return len(columns[0]) if columns else 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def summarize(values: list[Any]) -> dict[str, Any]:
    """Count, nulls and either numeric moments or the most common categories."""
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    out: dict[str, Any] = {"count": len(values), "nulls": len(values) - len(present)}
    if present and all(_is_number(v) for v in present):
        mean = sum(present) / len(present)
        var = sum((v - mean) ** 2 for v in present) / len(present)
        out.update(
            kind="numeric", mean=mean, std=math.sqrt(var), min=min(present), max=max(present)
        )
    else:
        out.update(
            kind="categorical",
            top=[[str(k), n] for k, n in Counter(map(str, present)).most_common(10)],
        )
    return out


def _subsample(sample: FeatureSample, limit: int, seed: int = 0) -> FeatureSample:
    if sample.rows <= limit:
        return sample
    keep = sorted(random.Random(seed).sample(range(sample.rows), limit))
    return FeatureSample(
        sample.side,
        {k: [v[i] for i in keep] for k, v in sample.keys.items()},
        {k: [v[i] for i in keep] for k, v in sample.features.items()},
    )


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def feature_set_version(session: Session, asset: Asset) -> AssetVersion:
    if asset.kind != "feature_set":
        raise InvalidInput(f"{asset.uri} is a {asset.kind}, not a feature set")
    if asset.deleted or asset.current_version == 0:
        raise InvalidInput(f"{asset.uri} has no current definition to sample")
    version = session.exec(
        select(AssetVersion)
        .where(AssetVersion.asset_id == asset.id)
        .where(AssetVersion.version == asset.current_version)
    ).one()
    return version


def save_feature_samples(
    conn: Connection, asset: Asset, version: AssetVersion, samples: list[FeatureSample]
) -> list[dict[str, Any]]:
    """Store each side; returns what was stored (rows and per-feature stats)."""
    now = utcnow()
    stored = []
    for sample in samples:
        if sample.side not in SIDES:
            raise InvalidInput(f"unknown sample side {sample.side!r}")
        kept = _subsample(sample, MAX_ROWS)
        payload = {
            "keys": {k: [_clean(v) for v in vs] for k, vs in kept.keys.items()},
            "features": {k: [_clean(v) for v in vs] for k, vs in kept.features.items()},
        }
        stats = {
            "rows": sample.rows,
            "kept_rows": kept.rows,
            "key_columns": sorted(kept.keys),
            "features": {name: summarize(vs) for name, vs in payload["features"].items()},
        }
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
        conn.execute(
            insert(PROFILE),
            [
                {
                    "asset_id": asset.id,
                    "version_id": version.id,
                    "kind": f"{sample.side}_sample",
                    "part": "",
                    "stats": stats,
                    "data": gzip.compress(body.encode(), mtime=0),
                    "created_at": now,
                }
            ],
        )
        stored.append({"side": sample.side, **stats})
    return stored


def load_feature_samples(session: Session, asset: Asset) -> dict[str, FeatureSample]:
    """The newest sample of each side for the asset (either may be missing)."""
    out: dict[str, FeatureSample] = {}
    for side in SIDES:
        profile = session.exec(
            select(Profile)
            .where(Profile.asset_id == asset.id)
            .where(Profile.kind == f"{side}_sample")
            .order_by(col(Profile.created_at).desc(), col(Profile.id).desc())
        ).first()
        if profile is None or profile.data is None:
            continue
        payload = json.loads(gzip.decompress(profile.data))
        out[side] = FeatureSample(side, payload["keys"], payload["features"])
    return out


def require_samples(session: Session, asset: Asset) -> dict[str, FeatureSample]:
    found = load_feature_samples(session, asset)
    if not found:
        raise NotFound(f"{asset.uri} has no feature samples", hint="steward features sample")
    return found
