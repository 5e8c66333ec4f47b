"""Two `steward scan` of one PostgreSQL source at once, into one catalog (SQLite, PostgreSQL).

Both read the source and apply what they found at the same moment: between
them, every asset is created once, every change makes one new version, and
a third scan afterwards finds nothing to do.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.pg_helpers import database, execute
from tests.lineage.stored import duplicate_versions, query
from tests.pg import database_url

pytestmark = pytest.mark.slow

STEWARD = str(Path(sys.executable).parent / "steward")
TABLES = 200
VIEWS = 20
SOURCE = (
    *(
        f"CREATE TABLE t_{i} (id integer PRIMARY KEY, name text, v numeric(10,2))"
        for i in range(TABLES)
    ),
    *(f"CREATE VIEW v_{i} AS SELECT id, name FROM t_{i}" for i in range(VIEWS)),
)


def scan(catalog_url: str, source: str) -> subprocess.Popen[str]:
    command = [STEWARD, "-q", "--catalog", catalog_url, "scan", "--json", source]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen[str]) -> dict[str, int]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    summary: dict[str, int] = json.loads(out)["summary"]
    return summary


def together(catalog_url: str, source: str) -> dict[str, int]:
    """Two scans started at once; their summaries added up."""
    first, second = scan(catalog_url, source), scan(catalog_url, source)
    total: dict[str, int] = {}
    for proc in (first, second):
        for key, value in finished(proc).items():
            total[key] = total.get(key, 0) + value
    return total


def versions(catalog_url: str) -> dict[str, list[int]]:
    rows = query(
        catalog_url,
        "SELECT a.name, v.version FROM asset a JOIN asset_version v ON v.asset_id = a.id"
        " ORDER BY a.name, v.version",
    )
    out: dict[str, list[int]] = {}
    for name, version in rows:
        out.setdefault(name.rsplit(".", 1)[1], []).append(version)
    return out


def assert_consistent(catalog_url: str, source: str) -> None:
    assert duplicate_versions(catalog_url) == []
    third = finished(scan(catalog_url, source))
    assert third["created"] == third["changed"] == third["deleted"] == 0, third


def test_two_scans_at_once_leave_consistent_versions(catalog_url: str) -> None:
    with database(*SOURCE, prefix="steward_twoscans") as name:
        source = database_url(name, "postgres")
        first: Any = together(catalog_url, source)
        assert first["created"] == TABLES + VIEWS  # each asset created by one scan only
        assert first["changed"] == first["deleted"] == 0
        assert set(map(tuple, versions(catalog_url).values())) == {(1,)}
        assert_consistent(catalog_url, source)

        altered = range(0, TABLES, 10)
        dropped = range(VIEWS + 1, TABLES, 10)
        execute(
            name,
            *(f"ALTER TABLE t_{i} ADD COLUMN added text" for i in altered),
            *(f"DROP TABLE t_{i}" for i in dropped),
        )
        second = together(catalog_url, source)
        assert second["created"] == 0
        assert second["changed"] == len(altered)  # one new version each, by one scan
        assert second["deleted"] == len(dropped)
        held = versions(catalog_url)
        assert all(held[f"t_{i}"] == [1, 2] for i in altered)
        assert sum(len(v) for v in held.values()) == TABLES + VIEWS + len(altered)
        assert_consistent(catalog_url, source)
