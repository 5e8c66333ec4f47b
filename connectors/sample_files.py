"""Reading feature value samples from files: CSV, NDJSON, JSON arrays, Parquet."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from catalog.errors import InvalidInput
from catalog.models import Asset, AssetVersion
from catalog.samples import FeatureSample


def _number(text: str) -> Any:
    """CSV cells are text: numbers become numbers, empty cells become null."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _read_rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                return [
                    {k: _number(v or "") for k, v in row.items()} for row in csv.DictReader(handle)
                ]
        if suffix in (".ndjson", ".jsonl", ".json"):
            text = path.read_text(encoding="utf-8")
            if suffix == ".json" and text.lstrip().startswith("["):
                rows = json.loads(text)
            else:
                rows = [json.loads(line) for line in text.splitlines() if line.strip()]
            if not all(isinstance(r, dict) for r in rows):
                raise InvalidInput(f"{path}: every row must be a JSON object")
            return rows
        if suffix == ".parquet":
            try:
                import pyarrow.parquet as pq
            except ImportError:
                raise InvalidInput(
                    f"{path}: reading Parquet needs pyarrow", hint="pip install pyarrow"
                ) from None
            return list(pq.read_table(path).to_pylist())
    except FileNotFoundError:
        raise InvalidInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInput(f"{path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{path}: not valid JSON at line {err.lineno}: {err.msg}") from None
    except csv.Error as err:
        raise InvalidInput(f"{path}: not valid CSV: {err}") from None
    raise InvalidInput(
        f"{path}: unknown sample format", hint="use .csv, .ndjson, .jsonl, .json or .parquet"
    )


def read_sample(
    path: Path, side: str, key_columns: list[str], features: list[str]
) -> FeatureSample:
    """A side's sample from a file: the key columns and every feature column present."""
    rows = _read_rows(path)
    if not rows:
        raise InvalidInput(f"{path}: no rows")
    columns = set().union(*(r.keys() for r in rows))
    missing = [k for k in key_columns if k not in columns]
    if missing:
        raise InvalidInput(f"{path}: missing entity column '{missing[0]}'")
    present = [f for f in features if f in columns]
    if not present:
        raise InvalidInput(
            f"{path}: none of the feature set's features is a column",
            hint=f"features: {', '.join(features)}",
        )
    return FeatureSample(
        side,
        {k: [r.get(k) for r in rows] for k in key_columns},
        {f: [r.get(f) for r in rows] for f in present},
    )


def read_samples(
    asset: Asset,
    version: AssetVersion,
    offline: Path | None,
    online: Path | None,
    entity_file: Path | None,
) -> list[FeatureSample]:
    """Both sides of a feature set's sample: from two files, or pulled from Feast."""
    props = version.definition.get("properties", {})
    names = [f["name"] for f in version.definition.get("fields", [])]
    if entity_file is not None:
        if offline or online:
            raise InvalidInput("give either --from-feast or --offline and --online, not both")
        repo = (asset.observed or {}).get("feast_repo")
        if not repo:
            raise InvalidInput(f"{asset.uri} was not scanned from a Feast repository")
        from connectors.feast import pull_samples

        rows = _read_rows(entity_file)
        if not rows:
            raise InvalidInput(f"{entity_file}: no rows")
        off, on, keys = pull_samples(repo, asset.name, rows)
        return [
            FeatureSample(
                "offline", {k: off[k] for k in keys}, {n: off[n] for n in names if n in off}
            ),
            FeatureSample("online", {k: on[k] for k in keys}, {n: on[n] for n in names if n in on}),
        ]
    if offline is None or online is None:
        raise InvalidInput("give both --offline FILE and --online FILE (or --from-feast FILE)")
    keys = [k for e in props.get("entities", []) for k in props.get("join_keys", {}).get(e, [e])]
    return [
        read_sample(offline, "offline", keys, names),
        read_sample(online, "online", keys, names),
    ]
