"""One write path: versions, fields, evidence, edges, aliases and assets (their
observations) are written only by `catalog`; the ingester and connectors call its
write functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
#: How code outside `catalog` would name the tables `catalog` alone writes.
OWNED = {
    "ASSET",
    "VERSION",
    "FIELD",
    "ALIAS",
    "EDGE",
    "EVIDENCE",
    "asset",
    "edge",
    "alias",
    "fields",
    "versions",
    "evidence",
}
OWNED_NAMES = {"asset", "asset_version", "asset_field", "alias", "edge", "asset_evidence"}
WRITES = {"insert", "update", "delete", "update_by_id", "insert_rows"}


def _writes_to_owned(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name not in WRITES:
            continue
        for arg in node.args:
            if (isinstance(arg, ast.Name) and arg.id in OWNED) or (
                isinstance(arg, ast.Constant) and arg.value in OWNED_NAMES
            ):
                found.append(
                    f"{path.relative_to(REPO)}:{node.lineno} {name}(...{ast.unparse(arg)})"
                )
    return found


@pytest.mark.parametrize("package", ["lineage", "connectors", "reports"])
def test_only_catalog_writes_its_tables(package: str) -> None:
    found = [w for path in sorted((REPO / package).rglob("*.py")) for w in _writes_to_owned(path)]
    assert found == []


def test_the_check_sees_a_write() -> None:
    """The twin: the check does find a write where there is one (catalog's own)."""
    assert _writes_to_owned(REPO / "catalog" / "writes.py")
