"""Apply 10,000 asset specs of 20 fields into SQLite, then re-apply them unchanged.

Baseline, measured in the same run: a bare `executemany` of the same asset,
version and field rows with the standard library's sqlite3, in one
transaction, into an empty catalog of the same schema.

    python -m benchmarks apply [--assets N] [--fields N]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import report, timed
from catalog.apply import apply
from catalog.db import Store
from catalog.models import key_hash
from catalog.specs import AssetSpec, FieldSpec
from catalog.versioning import diff_definitions, fingerprint

TYPES = ("integer", "bigint", "text", "numeric(10,2)", "timestamp with time zone", "boolean")


def make_specs(assets: int, fields: int) -> list[AssetSpec]:
    return [
        AssetSpec(
            namespace="postgres://bench:5432",
            name=f"shop.s{i % 10}.t{i}",
            kind="table",
            fields=[
                FieldSpec(name=f"c{j}", type=TYPES[(i + j) % len(TYPES)], nullable=j != 0)
                for j in range(fields)
            ],
            properties={"primary_key": ["c0"]},
        )
        for i in range(assets)
    ]


def bare_insert(path: Path, specs: list[AssetSpec]) -> None:
    """The floor: build the same rows and executemany them, nothing else."""
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ")
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    assets, versions, fields = [], [], []
    for asset_id, spec in enumerate(specs, start=1):
        definition = spec.definition()
        fp = fingerprint(definition)
        assets.append(
            (
                asset_id,
                key_hash(spec.uri),
                spec.namespace,
                spec.name,
                spec.uri,
                spec.kind,
                1,
                fp,
                False,
                False,
                "{}",
                now,
                now,
            )
        )
        versions.append(
            (
                asset_id,
                asset_id,
                1,
                fp,
                json.dumps(definition),
                json.dumps(diff_definitions(None, definition)),
                False,
                False,
                now,
            )
        )
        for pos, f in enumerate(spec.fields):
            fields.append((asset_id, asset_id, pos, f.name, f.type, f.nullable, "{}"))
    with conn:
        conn.executemany(
            "INSERT INTO asset (id, key_hash, namespace, name, uri, kind, current_version,"
            " fingerprint, deleted, unresolved, observed, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            assets,
        )
        conn.executemany(
            "INSERT INTO asset_version (id, asset_id, version, fingerprint, definition, diff,"
            " breaking, restored, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
            versions,
        )
        conn.executemany(
            "INSERT INTO asset_field (version_id, asset_id, position, name, type, nullable,"
            " attributes) VALUES (?,?,?,?,?,?,?)",
            fields,
        )
    conn.close()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks apply")
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--fields", type=int, default=20)
    args = parser.parse_args(argv)
    specs = make_specs(args.assets, args.fields)
    with tempfile.TemporaryDirectory() as tmp:
        base_path, path = Path(tmp) / "baseline.db", Path(tmp) / "catalog.db"
        Store(f"sqlite:///{base_path}").dispose()  # same schema, empty
        store = Store(f"sqlite:///{path}")
        baseline, _ = timed(lambda: bare_insert(base_path, specs))
        first, result = timed(lambda: apply(store, specs))
        again, unchanged = timed(lambda: apply(store, specs))
        store.dispose()
    assert result.summary()["created"] == args.assets
    assert unchanged.summary()["unchanged"] == args.assets
    label = f"{args.assets:,} specs x {args.fields} fields"
    report(f"baseline: bare executemany ({label})", baseline)
    report("first apply", first, baseline)
    report(
        "unchanged re-apply", again, baseline, note=f"first apply / re-apply = {first / again:.1f}x"
    )
