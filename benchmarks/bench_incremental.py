"""`steward check --incremental` after 100 changed assets, against a full check.

The catalog: N tables (100,000 by default) in 20 layers, each reading one or
two tables of the layer before (the edges), every one with a version; one in
a thousand has a breaking version that its readers still read (an error
finding, with what it puts at risk downstream). Then 100 random tables get a
new version (a field added) and the check runs again, incrementally; then
100 new edges (the graph changes: what stored errors put at risk is walked
again where they reach one), incrementally; then 100 more new versions, and
a full check. Baseline, measured in the same run: the full
check. The writes go through SQLAlchemy's executemany (this benchmark is
about the check, not about apply); the change log's triggers see them.

    python -m benchmarks incremental [--assets N] [--changes K] [--catalog URL]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from benchmarks.common import report, timed
from catalog.db import Store
from catalog.models import Asset, AssetVersion, Edge, key_hash
from lineage.findings import run_check

ASSET = Asset.__table__  # type: ignore[attr-defined]
VERSION = AssetVersion.__table__  # type: ignore[attr-defined]
EDGE = Edge.__table__  # type: ignore[attr-defined]
NS = "bench://h:1"
LAYERS = 20
T0 = datetime(2026, 11, 1, tzinfo=UTC)
FIELDS = [
    {"name": "id", "type": "integer", "nullable": True},
    {"name": "a", "type": "text", "nullable": True},
]
BREAKING = {
    "breaking": True,
    "added": [],
    "removed": [],
    "changed": [
        {"field": "a", "change": "retyped", "breaking": True, "from": "text", "to": "integer"}
    ],
}


def _definition(fields: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "table", "fields": fields, "properties": {}}


def populate(store: Store, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    size = n // LAYERS
    broken = set(rng.sample(range(n - size), max(1, n // 1000)))  # not in the last layer
    assets, versions, edges = [], [], []
    for i in range(n):
        current = 2 if i in broken else 1
        assets.append(
            {
                "id": i + 1,
                "key_hash": key_hash(f"{NS}/t{i}"),
                "namespace": NS,
                "name": f"t{i}",
                "uri": f"{NS}/t{i}",
                "kind": "table",
                "current_version": current,
                "fingerprint": "0" * 64,
                "deleted": False,
                "unresolved": False,
                "observed": {},
                "created_at": T0,
                "updated_at": T0,
            }
        )
        versions.append(
            {
                "asset_id": i + 1,
                "version": 1,
                "fingerprint": "1" * 64,
                "definition": _definition(FIELDS),
                "diff": {},
                "created_at": T0,
            }
        )
        if i in broken:
            retyped = [FIELDS[0], {**FIELDS[1], "type": "integer"}]
            versions.append(
                {
                    "asset_id": i + 1,
                    "version": 2,
                    "fingerprint": "2" * 64,
                    "definition": _definition(retyped),
                    "diff": BREAKING,
                    "created_at": T0 + timedelta(hours=1),
                }
            )
        layer = i // size
        if layer > 0:
            for source in rng.sample(range((layer - 1) * size, layer * size), rng.choice([1, 2])):
                edges.append(
                    {
                        "source_id": source + 1,
                        "target_id": i + 1,
                        "kind": "reads",
                        "origin_id": i + 1,
                        "fields": {},
                        "created_at": T0,
                    }
                )
    with store.write() as conn:
        for table, rows in ((ASSET, assets), (VERSION, versions), (EDGE, edges)):
            for start in range(0, len(rows), 5000):
                conn.execute(insert(table), rows[start : start + 5000])


def change(store: Store, n: int, k: int, seed: int) -> None:
    """K tables get a new version: a field added (what a scan of them would write)."""
    rng = random.Random(seed)
    when = datetime.now(UTC)
    with store.write() as conn:
        for i in rng.sample(range(n), k):
            top = conn.execute(
                VERSION.select()
                .with_only_columns(VERSION.c.version)
                .where(VERSION.c.asset_id == i + 1)
                .order_by(VERSION.c.version.desc())
                .limit(1)
            ).scalar_one()
            added = {"name": f"c{top}", "type": "text", "nullable": True}
            conn.execute(
                insert(VERSION).values(
                    asset_id=i + 1,
                    version=top + 1,
                    fingerprint=f"{top + 1:064d}",
                    definition=_definition([*FIELDS, added]),
                    diff={"breaking": False, "added": [added], "removed": [], "changed": []},
                    created_at=when,
                )
            )
            conn.execute(update(ASSET).where(ASSET.c.id == i + 1).values(current_version=top + 1))


def rewire(store: Store, n: int, k: int, seed: int) -> None:
    """K new edges, each from a table to one of the next layer (the graph changes)."""
    rng = random.Random(seed)
    size = n // LAYERS
    rows = []
    with store.engine.connect() as conn:
        taken = set(conn.execute(select(EDGE.c.source_id, EDGE.c.target_id)).tuples())
    for source in rng.sample(range(n - size), k):
        target = rng.randrange((source // size + 1) * size, (source // size + 2) * size)
        while (source + 1, target + 1) in taken:  # an edge it has already: another one
            target = rng.randrange((source // size + 1) * size, (source // size + 2) * size)
        taken.add((source + 1, target + 1))
        rows.append(
            {
                "source_id": source + 1,
                "target_id": target + 1,
                "kind": "reads",
                "origin_id": target + 1,
                "fields": {},
                "created_at": datetime.now(UTC),
            }
        )
    with store.write() as conn:
        conn.execute(insert(EDGE), rows)


#: Run in a child process: one full check of the catalog at argv[1]; prints its seconds,
#: findings, assets evaluated, and the process's peak RSS and RSS before the check (MB).
CHILD = """
import json, resource, sys, time
from catalog.db import Store
from lineage.findings import run_check

def rss():
    with open("/proc/self/status") as status:
        line = next(x for x in status if x.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024

store = Store(sys.argv[1])
before = rss()
start = time.perf_counter()
done = run_check(store)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
store.dispose()
print(json.dumps({"seconds": seconds, "findings": len(done.findings),
                  "evaluated": done.evaluated, "peak_mb": peak, "before_mb": before}))
"""


def full_check_measured(url: str) -> dict[str, Any]:
    """A full check in a child process: its time and peak memory (max RSS)."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, url], capture_output=True, text=True, check=True
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks incremental")
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--catalog", help="a catalog URL (default: a new SQLite file)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.catalog or f"sqlite:///{Path(tmp) / 'catalog.db'}"
        store = Store(url)
        seconds, _ = timed(lambda: populate(store, args.assets))
        report(f"write {args.assets:,} assets (not timed against)", seconds)
        first, done = timed(lambda: run_check(store))
        report(
            "full check (first: empties the change log)",
            first,
            note=f"{len(done.findings)} findings",
        )
        change(store, args.assets, args.changes, seed=1)
        incremental, done = timed(lambda: run_check(store, incremental=True))
        assert done.incremental, done.full_because
        rewire(store, args.assets, args.changes, seed=3)
        rewired, again = timed(lambda: run_check(store, incremental=True))
        assert again.incremental, again.full_because
        change(store, args.assets, args.changes, seed=2)
        whole = full_check_measured(url)
        full = whole["seconds"]
        used = whole["peak_mb"] - whole["before_mb"]
        report(
            f"full check after {args.changes} changed assets (baseline)",
            full,
            note=f"peak RSS {whole['peak_mb']:,.0f} MB ({whole['before_mb']:,.0f} MB before "
            f"the check: {used * 100_000 / args.assets:,.0f} MB per 100,000 assets); "
            f"{whole['findings']} findings",
        )
        report(
            f"incremental check after {args.changes} changed assets",
            incremental,
            full,
            note=f"{done.evaluated:,} assets evaluated of {whole['evaluated']:,}",
        )
        report(
            f"incremental check after {args.changes} new edges",
            rewired,
            full,
            note=f"{again.evaluated:,} assets evaluated",
        )
        store.dispose()
