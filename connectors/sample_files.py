"""Reading feature value samples from files: CSV, NDJSON, JSON arrays, Parquet."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from catalog.errors import InvalidInput
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
