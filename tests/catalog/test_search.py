"""Finding things: name search, suggestions, checked options, the other host spelling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from catalog.apply import apply
from catalog.cli import cli
from catalog.db import Store
from catalog.search import closeness
from catalog.specs import AssetSpec
from tests.connectors.pg_helpers import execute
from tests.pg import PG_PORT, database_url, temporary_database


def run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False)


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    store = Store(url)
    apply(
        store,
        [
            AssetSpec(namespace="postgres://db:5432", name="shop.public.orders", kind="table"),
            AssetSpec(namespace="postgres://db:5432", name="crm.public.orders", kind="table"),
            AssetSpec(namespace="postgres://db:5432", name="shop.public.users", kind="table"),
            AssetSpec(namespace="qdrant://q:6333", name="support_docs", kind="collection"),
        ],
    )
    store.dispose()
    return url


def uris(result: Result) -> list[str]:
    assert result.exit_code == 0, result.output
    return [row["uri"] for row in json.loads(result.stdout)]


def test_assets_by_name_substring_then_fuzzy(catalog: str) -> None:
    assert uris(run(catalog, "assets", "--name", "ORDERS", "--json")) == [
        "postgres://db:5432/crm.public.orders",
        "postgres://db:5432/shop.public.orders",
    ]
    assert uris(run(catalog, "assets", "--name", "qdrant://", "--json")) == [
        "qdrant://q:6333/support_docs"
    ]
    # No name contains "ordrs": the close ones are listed.
    assert set(uris(run(catalog, "assets", "--name", "ordrs", "--json"))) == {
        "postgres://db:5432/crm.public.orders",
        "postgres://db:5432/shop.public.orders",
    }
    assert uris(run(catalog, "assets", "--name", "zzzzqqq", "--json")) == []
    assert uris(run(catalog, "assets", "--name", "users", "--kind", "table", "--json")) == [
        "postgres://db:5432/shop.public.users"
    ]


def test_closeness() -> None:
    assert closeness("Orders", "shop.public.orders") == 1.0
    assert closeness("suport", "qdrant://q:6333/support_docs") > 0.8
    assert closeness("xyz", "shop.public.orders") < 0.5
    assert closeness("", "anything") == 0.0


def test_a_reference_that_names_nothing_suggests(catalog: str) -> None:
    result = run(catalog, "show", "suport_docs")
    assert result.exit_code == 2
    assert "did you mean qdrant://q:6333/support_docs?" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    nothing = run(catalog, "show", "zzzzqqq")
    assert nothing.exit_code == 2 and "see `steward assets`" in nothing.stderr


def test_an_unknown_kind_is_refused_with_the_choices(catalog: str) -> None:
    result = run(catalog, "assets", "--kind", "tabel")
    assert result.exit_code == 2 and result.stdout == ""
    assert "unknown kind 'tabel'" in result.stderr and "did you mean 'table'?" in result.stderr
    assert "collection" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unresolved_reference_names_the_other_host_spelling(tmp_path: Path) -> None:
    """The source is scanned as 127.0.0.1; the feature file says localhost."""
    url = f"sqlite:///{tmp_path / 'steward.db'}"
    with temporary_database("steward_spelling") as name:
        execute(name, "CREATE TABLE events (user_id bigint, ts timestamptz)")
        scanned = run(url, "scan", database_url(name, "postgres"))
        assert scanned.exit_code == 0, scanned.output
    features = tmp_path / "features.toml"
    features.write_text(
        f"""
[feature_sets.activity]
entities = ["user_id"]
source = "postgres://localhost:{PG_PORT}/{name}.public.events"
[feature_sets.activity.features.clicks]
dtype = "int64"
offline = "count(*)"
online = "count(*)"
"""
    )
    assert run(url, "scan", str(features)).exit_code == 0
    result = run(url, "check", "--rule", "unresolved_reference", "--json", "--fail-on", "error")
    (finding,) = json.loads(result.stdout)
    spelled = f"postgres://127.0.0.1:{PG_PORT}/{name}.public.events"
    assert finding["assets"] == [f"postgres://localhost:{PG_PORT}/{name}.public.events"]
    assert finding["evidence"]["same_name_elsewhere"] == [spelled]
    assert finding["remedy"].startswith(spelled)
