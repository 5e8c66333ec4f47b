"""The PostgreSQL connector against the real server: versions, deletions, names, errors."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner
from sqlmodel import col, select

from catalog.apply import plan
from catalog.cli import cli
from catalog.db import Store
from catalog.errors import InvalidInput, SourceUnavailable
from catalog.models import Asset
from connectors.postgres import PostgresConfig
from connectors.registry import for_url
from tests.connectors.pg_helpers import (
    NAMESPACE,
    asset,
    by_short_name,
    database,
    dsn,
    execute,
    scan,
    scan_apply,
    version_count,
    versions,
)
from tests.pg import ADMIN_DSN, PG_HOST, PG_PORT, database_url

SHOP = (
    "CREATE TABLE customers (id integer PRIMARY KEY, email varchar(200) NOT NULL UNIQUE,"
    " name text, score numeric(10,2) DEFAULT 0)",
    "COMMENT ON TABLE customers IS 'People who buy things'",
    "COMMENT ON COLUMN customers.email IS 'Login e-mail'",
    "CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " customer_id integer NOT NULL REFERENCES customers(id) ON DELETE CASCADE,"
    " total numeric(10,2) CHECK (total >= 0), placed timestamptz DEFAULT now(),"
    " total_cents bigint GENERATED ALWAYS AS ((total * 100)::bigint) STORED)",
    "CREATE VIEW big_orders AS SELECT o.id, c.email, o.total FROM orders o"
    " JOIN customers c ON c.id = o.customer_id WHERE o.total > 100",
)


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def shop() -> Iterator[str]:
    with database(*SHOP) as name:
        yield name


def test_columns_keys_comments_identity_and_generated(shop: str) -> None:
    specs = by_short_name(scan(shop))
    customers = specs["public.customers"]
    assert customers.description == "People who buy things"
    fields = {f.name: f for f in customers.fields}
    assert fields["email"].type == "character varying(200)"
    assert fields["email"].nullable is False
    assert fields["email"].description == "Login e-mail"
    assert fields["score"].default == "0"
    assert customers.properties["primary_key"] == ["id"]
    assert customers.properties["unique"] == [{"name": "customers_email_key", "columns": ["email"]}]
    orders = {f.name: f for f in specs["public.orders"].fields}
    assert orders["id"].attributes == {"identity": "always"}
    assert orders["total_cents"].attributes["generated"] == "stored"
    assert orders["total_cents"].attributes["expression"] == "((total * (100)::numeric))::bigint"
    assert orders["total_cents"].default is None
    props = specs["public.orders"].properties
    assert props["foreign_keys"][0]["on_delete"] == "cascade"
    assert list(props["checks"].values()) == ["CHECK (total >= 0::numeric)"]
    observed = specs["public.orders"].observed
    assert observed["owner"] == "postgres"
    assert observed["size_bytes"] > 0
    view = specs["public.big_orders"]
    assert {e.source_name for e in view.edges} == {
        f"{shop}.public.orders",
        f"{shop}.public.customers",
    }
    assert "WHERE o.total > 100" in view.properties["definition"]


def test_alter_table_gives_version_two_with_a_classified_diff(shop: str, store: Store) -> None:
    scan_apply(store, shop)
    execute(
        shop,
        "ALTER TABLE customers DROP COLUMN name",
        "ALTER TABLE customers ALTER COLUMN score TYPE numeric(12,2)",
        "ALTER TABLE customers ADD COLUMN nickname text",
    )
    result = scan_apply(store, shop)
    assert result.summary() == {"created": 0, "changed": 1, "unchanged": 2, "deleted": 0}
    [change] = result.pending
    assert change.uri == f"{NAMESPACE}/{shop}.public.customers"
    assert (change.previous, change.version) == (1, 2)
    assert change.diff is not None
    assert change.diff["breaking"] is True
    assert change.diff["removed"] == [{"name": "name", "type": "text"}]
    assert change.diff["added"] == [{"name": "nickname", "type": "text"}]
    [retyped] = [c for c in change.diff["changed"] if c["field"] == "score"]
    assert retyped["change"] == "retyped"
    assert (retyped["from"], retyped["to"], retyped["breaking"]) == (
        "numeric(10,2)",
        "numeric(12,2)",
        True,
    )
    stored = versions(store, f"{shop}.public.customers")
    assert [v.version for v in stored] == [1, 2]
    assert stored[1].breaking is True


def test_added_nullable_column_is_not_breaking(shop: str, store: Store) -> None:
    scan_apply(store, shop)
    execute(shop, "ALTER TABLE orders ADD COLUMN note text")
    [change] = scan_apply(store, shop).pending
    assert change.diff is not None
    assert change.diff["added"] == [{"name": "note", "type": "text"}]
    assert change.diff["breaking"] is False


def test_dropped_table_is_marked_deleted_and_observations_do_not_version(
    shop: str, store: Store
) -> None:
    scan_apply(store, shop)
    count = version_count(store)
    execute(shop, "INSERT INTO customers VALUES (1, 'a@example.com', 'A', 1)", "ANALYZE customers")
    assert scan_apply(store, shop).pending == []
    assert version_count(store) == count
    assert asset(store, f"{shop}.public.customers").observed["rows_estimate"] == 1

    execute(shop, "DROP VIEW big_orders", "DROP TABLE orders")
    result = scan_apply(store, shop)
    assert {(c.action, c.uri.rsplit(".", 1)[1]) for c in result.pending} == {
        ("delete", "orders"),
        ("delete", "big_orders"),
    }
    assert asset(store, f"{shop}.public.orders").deleted is True
    assert asset(store, f"{shop}.public.customers").deleted is False


HOSTILE_SCHEMA = 'We"ird; schema'
HOSTILE_TABLE = 'Tab "q"; DROP TABLE x; --'
HOSTILE_COLUMN = "Ünïcødé Col.umn"


def test_hostile_names_are_captured_exactly(store: Store) -> None:
    with database(
        'CREATE SCHEMA "We""ird; schema"',
        'CREATE TABLE "We""ird; schema"."Tab ""q""; DROP TABLE x; --"'
        ' ("Ünïcødé Col.umn" text, "MixedCase" int, "(x)" int, "<>" int, "1st" int)',
        'CREATE VIEW "We""ird; schema"."VIEW {braces} \\ back"'
        ' AS SELECT "Ünïcødé Col.umn" AS "out put", "<>" AS ":colon" '
        'FROM "We""ird; schema"."Tab ""q""; DROP TABLE x; --"',
        'CREATE TABLE "CamelTable" ("Id" int)',
    ) as name:
        specs = by_short_name(scan(name))
        table = specs[f"{HOSTILE_SCHEMA}.{HOSTILE_TABLE}"]
        assert table.name == f"{name}.{HOSTILE_SCHEMA}.{HOSTILE_TABLE}"
        assert [f.name for f in table.fields] == [HOSTILE_COLUMN, "MixedCase", "(x)", "<>", "1st"]
        view = specs[f"{HOSTILE_SCHEMA}.VIEW {{braces}} \\ back"]
        [edge] = view.edges
        assert edge.source_name == table.name
        assert edge.fields == {"out put": [HOSTILE_COLUMN], ":colon": ["<>"]}
        assert [f.name for f in specs["public.CamelTable"].fields] == ["Id"]
        scan_apply(store, name)
        assert scan_apply(store, name).pending == []
        with store.session() as session:
            names = set(session.exec(select(Asset.name)).all())
        assert f"{name}.{HOSTILE_SCHEMA}.{HOSTILE_TABLE}" in names


def test_schema_option_limits_the_scan_and_the_deletions(store: Store) -> None:
    with database(
        "CREATE SCHEMA sales",
        "CREATE TABLE sales.deals (id int)",
        "CREATE TABLE public.notes (id int)",
    ) as name:
        scan_apply(store, name)
        result = scan(name, schemas=("sales",))
        assert [s.name for s in result.specs] == [f"{name}.sales.deals"]
        execute(name, "DROP TABLE sales.deals", "DROP TABLE public.notes")
        outcome = scan_apply(store, name, schemas=("sales",))
        # Only the scanned schema's assets can be deleted by this scan.
        assert [c.uri for c in outcome.pending] == [f"{NAMESPACE}/{name}.sales.deals"]
        assert asset(store, f"{name}.public.notes").deleted is False
        missing = scan(name, schemas=("nosuch",))
        assert missing.specs == []
        assert "schema 'nosuch' does not exist" in missing.warnings[0]


def test_dropped_schema_assets_are_deleted_on_a_full_scan(store: Store) -> None:
    with database("CREATE SCHEMA gone", "CREATE TABLE gone.t (id int)") as name:
        scan_apply(store, name)
        execute(name, "DROP SCHEMA gone CASCADE")
        outcome = scan_apply(store, name)
        assert [(c.action, c.uri) for c in outcome.pending] == [
            ("delete", f"{NAMESPACE}/{name}.gone.t")
        ]


@pytest.fixture
def limited_role() -> Iterator[str]:
    role = f"steward_limited_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')  # type: ignore[arg-type]
    try:
        yield role
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')  # type: ignore[arg-type]


def test_schema_without_usage_is_reported_and_skipped(limited_role: str, store: Store) -> None:
    with database(
        "CREATE SCHEMA secret",
        "CREATE TABLE secret.salaries (id int)",
        "CREATE TABLE public.open_data (id int)",
        "REVOKE ALL ON SCHEMA secret FROM PUBLIC",
    ) as name:
        # First as the owner: everything is catalogued.
        scan_apply(store, name)
        url = f"postgres://{limited_role}@{PG_HOST}:{PG_PORT}/{name}"
        result = for_url(url).scan()
        assert [s.name for s in result.specs] == [f"{name}.public.open_data"]
        assert result.warnings == [
            "permission denied for schema 'secret' (no USAGE privilege): skipped"
        ]
        # The unreadable schema is not covered, so its assets are not deleted.
        outcome = plan(store, result.specs, result.scopes)
        assert outcome.pending == []
        code, out, err = run_cli("--catalog", store.url, "scan", url, "--json")
        assert code == 0, err
        assert json.loads(out)["warnings"] == result.warnings
        assert "permission denied for schema 'secret'" in err


def test_cli_plan_writes_nothing_and_apply_summarises(shop: str, tmp_path: Path) -> None:
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    url = database_url(shop, "postgres")
    code, out, err = run_cli("--catalog", catalog, "scan", url, "--plan")
    assert code == 0, err
    assert f"+ create {NAMESPACE}/{shop}.public.customers (table)" in out
    assert "plan (nothing written): 3 created" in err
    with Store(catalog).session() as session:
        assert session.exec(select(Asset)).all() == []
    code, out, err = run_cli("--catalog", catalog, "scan", url, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["applied"] is True
    assert data["summary"] == {"created": 3, "changed": 0, "unchanged": 0, "deleted": 0}
    assert data["source"] == f"scan {NAMESPACE}/{shop}"
    code, out, err = run_cli("--catalog", catalog, "scan", url)
    assert code == 0
    assert out == ""
    assert "applied: 0 created, 0 changed, 3 unchanged, 0 deleted" in err
    code, out, err = run_cli("--catalog", catalog, "-q", "scan", url)
    assert (code, out, err) == (0, "", "")


@pytest.mark.parametrize(
    ("url", "cause"),
    [
        (f"postgres://postgres@{PG_HOST}:1/postgres", "host unreachable: connection refused"),
        (
            f"postgres://postgres@{PG_HOST}:{PG_PORT}/steward_no_such_db",
            "database 'steward_no_such_db' does not exist",
        ),
        (
            f"postgres://steward_no_such_role:pw@{PG_HOST}:{PG_PORT}/postgres",
            "authentication failed: role 'steward_no_such_role' does not exist",
        ),
        ("postgres://postgres@steward-no-such-host.invalid/db", "host unreachable: unknown host"),
    ],
)
def test_connection_errors_are_one_line_and_name_the_cause(
    url: str, cause: str, tmp_path: Path
) -> None:
    with pytest.raises(SourceUnavailable) as info:
        for_url(url).scan()
    assert cause in str(info.value)
    assert "\n" not in str(info.value)
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    code, out, err = run_cli("--catalog", catalog, "scan", url)
    assert code == 2
    assert out == ""
    assert err.startswith("Error: cannot connect to postgres://")
    assert cause in err
    assert err.count("\n") == 1
    assert ":pw@" not in err


def test_bad_urls_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="password in the URL's query"):
        for_url(f"postgres://{PG_HOST}/db?password=x").scan()
    with pytest.raises(InvalidInput, match="unknown connection parameter 'foo'"):
        for_url(f"postgres://{PG_HOST}/db?foo=1").scan()
    with pytest.raises(InvalidInput, match="--api-key does not apply"):
        for_url(f"postgres://{PG_HOST}/db", api_key="k")


PLANTED = "Pl4nted-S3cret-" + uuid.uuid4().hex[:8]


def test_password_is_never_kept_or_printed(
    shop: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server trusts 127.0.0.1, so the password is sent but not checked here;
    the pgvector tests check real password authentication on a scram server."""
    role = f"steward_pw_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{PLANTED}'")  # type: ignore[arg-type]
    try:
        url = f"postgres://{role}:{PLANTED}@{PG_HOST}:{PG_PORT}/{shop}"
        config = PostgresConfig.from_options(url, {})
        assert PLANTED not in repr(config) and PLANTED not in config.url
        assert isinstance(config, PostgresConfig) and config.password is not None
        assert config.password.get_secret_value() == PLANTED
        odd = PostgresConfig.from_options("postgres://u:p@ss%2Fw@h:1/db", {})
        assert isinstance(odd, PostgresConfig) and odd.password is not None
        assert (odd.url, odd.password.get_secret_value()) == ("postgres://u@h:1/db", "p@ss/w")
        catalog_path = tmp_path / "c.db"
        catalog = f"sqlite:///{catalog_path}"
        outputs = []
        caplog.set_level(logging.DEBUG)
        for root, args in (([], ["--plan"]), ([], []), ([], ["--json"]), (["-vv"], ["--json"])):
            result = CliRunner().invoke(cli, [*root, "--catalog", catalog, "scan", url, *args])
            assert result.exit_code == 0, result.output
            outputs.append(result.stdout + result.stderr)
        bad = f"postgres://{role}:{PLANTED}@{PG_HOST}:1/{shop}"
        result = CliRunner().invoke(cli, ["--catalog", catalog, "scan", bad])
        assert result.exit_code == 2
        outputs.append(result.stdout + result.stderr)
        Store(catalog).dispose()
        dump = b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert PLANTED.encode() not in dump
        assert role.encode() not in dump  # user names are not part of any key either
        for text in [*outputs, caplog.text]:
            assert PLANTED not in text
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')  # type: ignore[arg-type]


def test_progress_is_reported_step_by_step(shop: str) -> None:
    calls: list[tuple[int, int | None, str]] = []
    for_url(database_url(shop, "postgres")).scan(lambda d, t, label: calls.append((d, t, label)))
    done = [d for d, _, _ in calls]
    assert done == sorted(done)
    assert calls[0] == (0, 9, "connecting")
    assert calls[-1] == (9, 9, "done")


def test_a_scan_failing_midway_changes_nothing(limited_role: str, store: Store) -> None:
    """Reading views' rules is refused half way through: an error, and the catalog untouched."""
    with database(
        "CREATE TABLE t (id int)",
        "CREATE VIEW v AS SELECT id FROM t",
        "REVOKE SELECT ON pg_catalog.pg_rewrite FROM PUBLIC",
    ) as name:
        scan_apply(store, name)
        count = version_count(store)
        execute(name, "ALTER TABLE t ADD COLUMN extra text", "DROP VIEW v")
        url = f"postgres://{limited_role}@{PG_HOST}:{PG_PORT}/{name}"
        code, out, err = run_cli("--catalog", store.url, "scan", url)
        assert (code, out) == (2, "")
        assert err == (
            f"Error: cannot scan {NAMESPACE}/{name}: permission denied: "
            "permission denied for table pg_rewrite\n"
        )
        assert version_count(store) == count
        assert asset(store, f"{name}.public.v").deleted is False


def test_a_locked_table_gives_an_error_not_a_hang(shop: str) -> None:
    with psycopg.connect(f"host={PG_HOST} port={PG_PORT} user=postgres dbname={shop}") as locker:
        locker.execute("LOCK TABLE customers IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(SourceUnavailable) as info:
            for_url(database_url(shop, "postgres"), lock_timeout=1).scan()
        locker.rollback()
    assert str(info.value) == (
        f"cannot scan {NAMESPACE}/{shop}: a table or view is locked by another session"
        " (waited 1 s); try again once it is released"
    )
    assert len(scan(shop).specs) == 3


INJECTED = ('x"; DROP TABLE victim; --', "'); DELETE FROM victim; --")


def relations(database: str) -> set[tuple[str, str]]:
    """(schema, name) of every table and view PostgreSQL has in a database's own schemas."""
    with psycopg.connect(dsn(database)) as conn:
        rows = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')"
            " AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg_toast%'"
        ).fetchall()
    return {(schema, name) for schema, name in rows}


def ident(name: str) -> str:
    """An SQL identifier, quoted the way PostgreSQL wants (the test's own SQL, not steward's)."""
    return '"' + name.replace('"', '""') + '"'


def test_sql_in_names_runs_nothing_and_unicode_names_are_kept_exactly(store: Store) -> None:
    drop, delete = INJECTED
    schema, table, view = "схема 🚀", "表格 ✓", "v'iew; --"
    long_name = "Ж" * 40  # 80 bytes: PostgreSQL keeps the first 63 bytes, whole characters
    column = 'Ünï "q" 🚀'
    comment = delete.replace("'", "''")  # as an SQL string literal
    with database(
        "CREATE TABLE victim (id int)",
        "INSERT INTO victim VALUES (1), (2), (3)",
        f"CREATE SCHEMA {ident(schema)}",
        f"CREATE TABLE {ident(drop)} ({ident(delete)} int, {ident('列 ✓')} text)",
        f"CREATE TABLE {ident(delete)} (id int CONSTRAINT {ident('c' + delete)} CHECK (id > 0))",
        f"CREATE INDEX {ident('i' + drop)} ON {ident(delete)} (id)",
        f"CREATE TABLE {ident(schema)}.{ident(table)} ({ident(column)} text)",
        f"CREATE TABLE {ident(schema)}.{ident(long_name)} (id int)",
        f"COMMENT ON TABLE {ident(schema)}.{ident(table)} IS '{comment}'",
        f"CREATE VIEW {ident(schema)}.{ident(view)} AS SELECT {ident(column)} AS {ident('out; --')}"
        f" FROM {ident(schema)}.{ident(table)}",
    ) as name:
        url = database_url(name, "postgres")
        code, out, err = run_cli("--catalog", store.url, "scan", url, "--json")
        assert code == 0, err
        with psycopg.connect(dsn(name)) as conn:
            assert conn.execute("SELECT count(*) FROM victim").fetchone() == (3,)
        have = relations(name)
        assert (schema, "Ж" * 31) in have  # what PostgreSQL made of the long name
        expected = {f"{name}.{s}.{t}" for s, t in have}
        with store.session() as session:
            assets = session.exec(select(Asset).where(col(Asset.namespace) == NAMESPACE)).all()
            catalogued = {a.name: a.kind for a in assets if a.name.startswith(f"{name}.")}
        assert set(catalogued) == expected
        assert catalogued[f"{name}.{schema}.{view}"] == "view"
        assert {c["uri"] for c in json.loads(out)["changes"]} == {
            f"{NAMESPACE}/{n}" for n in expected
        }
        specs = by_short_name(scan(name))
        assert [f.name for f in specs[f"public.{drop}"].fields] == [delete, "列 ✓"]
        assert list(specs[f"public.{delete}"].properties["checks"]) == [f"c{delete}"]
        assert list(specs[f"public.{delete}"].properties["indexes"]) == [f"i{drop}"]
        described = specs[f"{schema}.{table}"]
        assert (described.description, [f.name for f in described.fields]) == (delete, [column])
        [edge] = specs[f"{schema}.{view}"].edges
        assert (edge.source_name, edge.fields) == (described.name, {"out; --": [column]})
        code, _, err = run_cli("--catalog", store.url, "scan", url)
        assert code == 0 and "0 created, 0 changed" in err  # found again under the same names
        with psycopg.connect(dsn(name)) as conn:
            assert conn.execute("SELECT count(*) FROM victim").fetchone() == (3,)
