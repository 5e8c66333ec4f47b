"""The PostgreSQL connector on the real pagila database: tables, keys, partitions, views."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from catalog.db import Store
from catalog.specs import AssetSpec
from connectors.base import Scan
from tests.conftest import FIXTURES
from tests.connectors.pg_helpers import NAMESPACE, scan, scan_apply, version_count
from tests.pg import temporary_database

PAGILA = FIXTURES / "pagila"

BASE_TABLES = {
    "actor",
    "address",
    "category",
    "city",
    "country",
    "customer",
    "film",
    "film_actor",
    "film_category",
    "inventory",
    "language",
    "payment",
    "rental",
    "staff",
    "store",
} | {f"payment_p2022_0{month}" for month in range(1, 8)}
VIEWS = {
    "actor_info",
    "customer_list",
    "film_list",
    "nicer_but_slower_film_list",
    "sales_by_film_category",
    "sales_by_store",
    "staff_list",
}


@pytest.fixture(scope="module")
def pagila() -> Iterator[str]:
    """pagila loaded once for this module, in a database of its own."""
    from tests.connectors.pg_helpers import load_sql_files

    with temporary_database("steward_pagila") as name:
        load_sql_files(name, PAGILA / "pagila-schema.sql", PAGILA / "pagila-data.sql")
        yield name


@pytest.fixture(scope="module")
def pagila_scan(pagila: str) -> Scan:
    return scan(pagila)


def specs_by_name(result: Scan, database: str) -> dict[str, AssetSpec]:
    prefix = f"{database}.public."
    return {s.name.removeprefix(prefix): s for s in result.specs}


def test_every_table_and_view_with_its_kind(pagila: str, pagila_scan: Scan) -> None:
    specs = specs_by_name(pagila_scan, pagila)
    kinds = {name: spec.kind for name, spec in specs.items()}
    assert {n for n, k in kinds.items() if k == "table"} == BASE_TABLES
    assert {n for n, k in kinds.items() if k == "view"} == VIEWS
    assert {n for n, k in kinds.items() if k == "materialized_view"} == {"rental_by_category"}
    assert all(s.namespace == NAMESPACE for s in pagila_scan.specs)
    assert pagila_scan.warnings == []
    assert pagila_scan.origin == f"scan {NAMESPACE}/{pagila}"


def test_columns_types_defaults_and_comments(pagila: str, pagila_scan: Scan) -> None:
    film = specs_by_name(pagila_scan, pagila)["film"]
    fields = {f.name: f for f in film.fields}
    assert [f.name for f in film.fields][:3] == ["film_id", "title", "description"]
    assert fields["film_id"].type == "integer"
    assert fields["film_id"].nullable is False
    assert fields["film_id"].default == "nextval('film_film_id_seq'::regclass)"
    assert fields["rental_rate"].type == "numeric(4,2)"
    assert fields["rental_rate"].default == "4.99"
    assert fields["rating"].type == "mpaa_rating"
    assert fields["special_features"].type == "text[]"
    assert fields["description"].nullable is True
    store = specs_by_name(pagila_scan, pagila)["customer_list"]
    assert "zip code" in [f.name for f in store.fields]


def test_keys_and_foreign_keys_are_properties_not_lineage(pagila: str, pagila_scan: Scan) -> None:
    specs = specs_by_name(pagila_scan, pagila)
    film_actor = specs["film_actor"]
    assert film_actor.properties["primary_key"] == ["actor_id", "film_id"]
    fks = {fk["references"]: fk for fk in film_actor.properties["foreign_keys"]}
    assert set(fks) == {f"{pagila}.public.actor", f"{pagila}.public.film"}
    assert fks[f"{pagila}.public.actor"]["columns"] == ["actor_id"]
    assert fks[f"{pagila}.public.actor"]["referenced_columns"] == ["actor_id"]
    assert fks[f"{pagila}.public.actor"]["on_delete"] == "restrict"
    assert fks[f"{pagila}.public.actor"]["on_update"] == "cascade"
    # Tables declare no lineage: foreign keys are relations, not data flow.
    assert all(not s.edges for s in specs.values() if s.kind == "table")
    rental = specs["rental"]
    assert {fk["references"].rsplit(".", 1)[1] for fk in rental.properties["foreign_keys"]} == {
        "customer",
        "inventory",
        "staff",
    }
    unique_index = rental.properties["indexes"][
        "idx_unq_rental_rental_date_inventory_id_customer_id"
    ]
    assert unique_index.startswith("CREATE UNIQUE INDEX")
    assert "(rental_date, inventory_id, customer_id)" in unique_index


def test_partitioned_payment_and_its_partitions(pagila: str, pagila_scan: Scan) -> None:
    specs = specs_by_name(pagila_scan, pagila)
    payment = specs["payment"]
    assert payment.kind == "table"
    assert payment.properties["partitioned"] is True
    assert payment.properties["partition_key"] == "RANGE (payment_date)"
    assert payment.properties["partitions"] == [
        f"{pagila}.public.payment_p2022_0{m}" for m in range(1, 8)
    ]
    january = specs["payment_p2022_01"]
    assert january.properties["partition_of"] == f"{pagila}.public.payment"
    assert "FOR VALUES FROM ('2022-01-01" in january.properties["partition_bound"]
    assert [f.name for f in january.fields] == [f.name for f in payment.fields]
    assert payment.observed["size_bytes"] == sum(
        specs[f"payment_p2022_0{m}"].observed["size_bytes"] for m in range(1, 8)
    )


def _upstream(spec: AssetSpec) -> dict[str, dict[str, list[str]]]:
    return {e.source_name.rsplit(".", 1)[1]: e.fields for e in spec.edges}


def test_view_lineage_tables_and_columns(pagila: str, pagila_scan: Scan) -> None:
    specs = specs_by_name(pagila_scan, pagila)
    actor_info = specs["actor_info"]
    assert all(e.kind == "view_dependency" for e in actor_info.edges)
    assert all(e.source_namespace == NAMESPACE for e in actor_info.edges)
    upstream = _upstream(actor_info)
    assert set(upstream) == {"actor", "category", "film", "film_actor", "film_category"}
    assert upstream["actor"]["first_name"] == ["first_name"]
    assert upstream["category"]["film_info"] == ["name"]
    assert upstream["film"]["film_info"] == ["title"]

    film_list = _upstream(specs["film_list"])
    assert set(film_list) == {"actor", "category", "film", "film_actor", "film_category"}
    assert film_list["actor"]["actors"] == ["first_name", "last_name"]
    assert film_list["film"]["price"] == ["rental_rate"]
    assert film_list["category"]["category"] == ["name"]

    customer_list = _upstream(specs["customer_list"])
    assert customer_list["address"]["zip code"] == ["postal_code"]
    assert customer_list["customer"]["name"] == ["first_name", "last_name"]

    matview = _upstream(specs["rental_by_category"])
    assert set(matview) == {"category", "film", "film_category", "inventory", "payment", "rental"}
    assert matview["payment"] == {"total_sales": ["amount"]}


def test_apply_then_rescan_writes_nothing(pagila: str, store: Store) -> None:
    first = scan_apply(store, pagila)
    assert first.summary() == {"created": 30, "changed": 0, "unchanged": 0, "deleted": 0}
    count = version_count(store)
    again = scan_apply(store, pagila)
    assert again.summary() == {"created": 0, "changed": 0, "unchanged": 30, "deleted": 0}
    assert version_count(store) == count == 30
