"""Real-shaped catalogs for the report's browser checks: pagila and a dbt-style chain.

- `pagila_catalog`: the pagila schema (tests/fixtures/external/pagila) loaded into
  the local PostgreSQL and scanned by steward's own connector: 22 tables and
  partitions, 7 views over them.
- `dbt_catalog`: what `dbt-ol` sends for a jaffle-shop-like project in a
  production database (`realprod_jaffle.analytics.customer_revenue`: long
  dotted names that share their start), ingested by steward's ingester: seeds,
  staging models, marts, a dev copy of one mart, column lineage, a failed run
  with its error message, and a later run that drops a column a mart reads.

The rules run over both, so findings and at-risk marks are the real ones.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from catalog.db import Store
from lineage.findings import check
from lineage.ingest import Ingester, read_path
from tests.conftest import FIXTURES
from tests.pg import temporary_database

WAREHOUSE = "postgres://warehouse.internal:5432"
PROJECT = "realprod_jaffle"
PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.24.2/integration/dbt"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"

#: model -> (schema, columns, {column: [(input model, input column), ...]})
MODELS: dict[str, tuple[str, list[str], dict[str, list[tuple[str, str]]]]] = {
    "raw_customers": ("raw", ["id", "first_name", "last_name", "email"], {}),
    "raw_orders": ("raw", ["id", "user_id", "order_date", "status"], {}),
    "raw_payments": ("raw", ["id", "order_id", "payment_method", "amount"], {}),
    "stg_customers": (
        "analytics_staging",
        ["customer_id", "first_name", "last_name", "email"],
        {
            "customer_id": [("raw_customers", "id")],
            "first_name": [("raw_customers", "first_name")],
            "last_name": [("raw_customers", "last_name")],
            "email": [("raw_customers", "email")],
        },
    ),
    "stg_orders": (
        "analytics_staging",
        ["order_id", "customer_id", "order_date", "status"],
        {"order_id": [("raw_orders", "id")], "customer_id": [("raw_orders", "user_id")]},
    ),
    "stg_payments": (
        "analytics_staging",
        ["payment_id", "order_id", "payment_method", "amount"],
        {"payment_id": [("raw_payments", "id")], "amount": [("raw_payments", "amount")]},
    ),
    "customers": (
        "analytics",
        ["customer_id", "first_name", "email", "first_order", "number_of_orders"],
        {
            "customer_id": [("stg_customers", "customer_id")],
            "email": [("stg_customers", "email")],
            "number_of_orders": [("stg_orders", "order_id")],
        },
    ),
    "orders": (
        "analytics",
        ["order_id", "customer_id", "order_date", "amount"],
        {"order_id": [("stg_orders", "order_id")], "amount": [("stg_payments", "amount")]},
    ),
    "customer_revenue": (
        "analytics",
        ["customer_id", "revenue"],
        {"customer_id": [("customers", "customer_id")], "revenue": [("orders", "amount")]},
    ),
    "customer_ltv": (
        "analytics",
        ["customer_id", "ltv"],
        {"customer_id": [("customer_revenue", "customer_id")], "ltv": [("orders", "amount")]},
    ),
    "customer_orders": (
        "analytics",
        ["customer_id", "orders"],
        {"customer_id": [("customers", "customer_id")], "orders": [("orders", "order_id")]},
    ),
}
#: A developer's copy of a mart: same table name, another schema.
DEV_COPY = ("analytics_dev", "customers")


def _name(model: str) -> str:
    return f"{PROJECT}.{MODELS[model][0]}.{model}"


def _dataset(model: str, columns: list[str] | None = None, schema: str | None = None) -> Any:
    schema = schema or MODELS[model][0]
    out: dict[str, Any] = {"namespace": WAREHOUSE, "name": f"{PROJECT}.{schema}.{model}"}
    fields = columns if columns is not None else MODELS[model][1]
    out["facets"] = {
        "schema": {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json",
            "fields": [{"name": c, "type": "text"} for c in fields],
        }
    }
    return out


def _events(model: str, minute: int, **change: Any) -> list[dict[str, Any]]:
    """START and COMPLETE (or FAIL) of one model's run, as dbt-ol sends them."""
    schema, columns, lineage = MODELS[model]
    schema = change.get("schema", schema)
    columns = change.get("columns", columns)
    output = _dataset(model, columns, schema)
    if lineage:
        output["facets"]["columnLineage"] = {
            "_producer": PRODUCER,
            "_schemaURL": "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json",
            "fields": {
                column: {
                    "inputFields": [
                        {"namespace": WAREHOUSE, "name": _name(m), "field": f} for m, f in sources
                    ]
                }
                for column, sources in lineage.items()
                if column in columns
            },
        }
    inputs = sorted({m for sources in lineage.values() for m, _ in sources})
    run = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{model}/{minute}"))
    job = {"namespace": "dbt-prod", "name": f"{PROJECT}.{schema}.{model}"}
    start = f"2026-11-20T03:{minute:02d}:00Z"
    end = f"2026-11-20T03:{minute:02d}:{17 + minute % 40:02d}Z"
    base = {"producer": PRODUCER, "schemaURL": RUN_EVENT, "job": job}
    failed = change.get("error")
    done: dict[str, Any] = {
        **base,
        "eventType": "FAIL" if failed else "COMPLETE",
        "eventTime": end,
        "run": {"runId": run},
        "inputs": [_dataset(m) for m in inputs],
        "outputs": [] if failed else [output],
    }
    if failed:
        done["run"]["facets"] = {
            "errorMessage": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json",
                "message": failed,
                "programmingLanguage": "sql",
            }
        }
    return [
        {**base, "eventType": "START", "eventTime": start, "run": {"runId": run}, "inputs": []},
        done,
    ]


def dbt_catalog(store: Store, tmp: Path) -> None:
    events: list[dict[str, Any]] = []
    for minute, model in enumerate(MODELS):
        if model == "customer_ltv":
            events += _events(model, minute, error='column "ltv" is of type numeric but ...')
        else:
            events += _events(model, minute)
    events += _events(DEV_COPY[1], 30, schema=DEV_COPY[0])
    # A later run of a staging model drops `email`, which `customers` reads.
    events += _events("stg_customers", 45, columns=["customer_id", "first_name", "last_name"])
    path = tmp / "dbt-events.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    Ingester(store).ingest_stream(read_path(str(path)), lambda r, s: None)
    check(store)


@contextmanager
def pagila_catalog(store: Store) -> Iterator[None]:
    """The pagila schema in a database of its own, scanned into `store`."""
    from tests.connectors.pg_helpers import load_sql_files, scan_apply

    with temporary_database("steward_pagila_report") as name:
        load_sql_files(name, FIXTURES / "pagila" / "pagila-schema.sql")
        scan_apply(store, name)
        check(store)
        yield
