"""The CLI as a user runs it, through click's CliRunner."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from catalog.apply import apply
from catalog.cli import COMMANDS, SHORT_HELP, cli
from catalog.db import Store
from catalog.specs import AssetSpec, FieldSpec
from tests.conftest import REPO

NS = "postgres://localhost:5432"


def run(url: str, *args: str, **kwargs: object) -> Result:
    return CliRunner().invoke(cli, ["--catalog", url, *args], catch_exceptions=False, **kwargs)


@pytest.fixture
def seeded(catalog_url: str) -> str:
    store = Store(catalog_url)
    versions = [
        [("id", "integer"), ("total", "numeric(10,2)")],
        [("id", "bigint"), ("total", "numeric(10,2)"), ("note", "text")],
    ]
    for cols in versions:
        apply(
            store,
            [
                AssetSpec(
                    namespace=NS,
                    name="shop.public.orders",
                    kind="table",
                    fields=[FieldSpec(name=n, type=t) for n, t in cols],
                )
            ],
        )
    apply(
        store,
        [
            AssetSpec(
                namespace=NS,
                name="shop.public.users",
                kind="table",
                fields=[FieldSpec(name="id", type="integer")],
            ),
            AssetSpec(namespace="qdrant://q:6333", name="docs", kind="collection"),
        ],
    )
    store.dispose()
    return catalog_url


def test_assets_json_shape(seeded: str) -> None:
    result = run(seeded, "assets", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["uri"] for r in rows] == [
        "postgres://localhost:5432/shop.public.orders",
        "postgres://localhost:5432/shop.public.users",
        "qdrant://q:6333/docs",
    ]
    orders = rows[0]
    assert {
        "uri",
        "namespace",
        "name",
        "kind",
        "version",
        "fingerprint",
        "deleted",
        "fields",
    } <= set(orders)
    assert orders["version"] == 2 and orders["deleted"] is False
    assert orders["fields"][0] == {"name": "id", "type": "bigint", "nullable": True}


def test_assets_filter_by_kind_and_table_output(seeded: str) -> None:
    result = run(seeded, "assets", "--kind", "collection")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["URI", "KIND", "VERSION", "FIELDS", "STATE"]
    assert len(lines) == 2 and "qdrant://q:6333/docs" in lines[1]


def test_history_and_diff(seeded: str) -> None:
    hist = json.loads(run(seeded, "history", "orders", "--json").stdout)
    assert [v["version"] for v in hist] == [1, 2]
    assert set(hist[1]) >= {"version", "fingerprint", "created_at", "diff"}
    diff = hist[1]["diff"]
    assert set(diff) >= {"added", "removed", "changed", "breaking"}
    assert diff["added"] == [{"name": "note", "type": "text"}] and diff["breaking"] is True
    text = run(seeded, "diff", "shop.public.orders", "1", "2")
    assert text.exit_code == 0
    assert "+ note  text" in text.stdout and "retyped 'integer' -> 'bigint'" in text.stdout
    as_json = json.loads(run(seeded, "diff", "orders", "2", "1", "--json").stdout)
    assert as_json["removed"] == [{"name": "note", "type": "text"}]


def test_show(seeded: str) -> None:
    data = json.loads(run(seeded, "show", "users", "--json").stdout)
    assert data["uri"] == "postgres://localhost:5432/shop.public.users"
    assert data["schema_version"] == 1
    text = run(seeded, "show", "qdrant://q:6333/docs").stdout
    assert text.startswith("qdrant://q:6333/docs") and "kind: collection" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "nope"], "no asset matches 'nope'"),
        (["history", "shop"], "no asset matches 'shop'"),
        (["show", "public"], "no asset matches"),
        (["diff", "orders", "1", "7"], "has no version 7"),
    ],
)
def test_bad_references_are_one_line_errors(seeded: str, args: list[str], message: str) -> None:
    store = Store(seeded)
    before = json.loads(run(seeded, "assets", "--json").stdout)
    result = run(seeded, *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert json.loads(run(seeded, "assets", "--json").stdout) == before
    store.dispose()


def test_ambiguous_reference_lists_candidates(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    apply(
        Store(url),
        [
            AssetSpec(namespace=NS, name=f"{db}.public.orders", kind="table")
            for db in ("shop", "crm")
        ],
    )
    result = run(url, "show", "orders")
    assert result.exit_code == 2
    assert "ambiguous" in result.stderr
    assert "crm.public.orders" in result.stderr and "shop.public.orders" in result.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("mysql://h/db", "unsupported database"),
        ("postgresql://steward:hunter2@127.0.0.1:1/none", "cannot open catalog"),
        ("sqlite:////nonexistent-dir/x.db", "does not exist"),
    ],
)
def test_bad_catalog_url(url: str, message: str) -> None:
    result = run(url, "assets")
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "hunter2" not in result.stderr + result.stdout


def test_init_creates_and_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new.db'}"
    first = run(url, "init")
    assert first.exit_code == 0 and "Catalog ready" in first.stderr
    assert (tmp_path / "new.db").exists()
    assert run(url, "init").exit_code == 0
    assert run(url, "assets", "--json").stdout.strip() == "[]"


def test_catalog_url_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    # Default: steward.db in the working directory.
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert (tmp_path / "steward.db").exists()
    # steward.toml beats the default...
    (tmp_path / "steward.toml").write_text('[steward]\ncatalog = "sqlite:///from-file.db"\n')
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert (tmp_path / "from-file.db").exists()
    # ...the environment beats the file...
    monkeypatch.setenv("STEWARD_CATALOG_URL", "sqlite:///from-env.db")
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert (tmp_path / "from-env.db").exists()
    # ...and the option beats them all.
    assert runner.invoke(cli, ["--catalog", "sqlite:///from-option.db", "init"]).exit_code == 0
    assert (tmp_path / "from-option.db").exists()


def test_bad_config_file_names_file_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "steward.toml").write_text('[steward]\ncatalgo = "sqlite:///x.db"\n')
    result = CliRunner().invoke(cli, ["assets"])
    assert result.exit_code == 2
    assert "steward.toml" in result.stderr and "catalgo" in result.stderr
    (tmp_path / "steward.toml").write_text("[steward\n")
    result = CliRunner().invoke(cli, ["assets"])
    assert result.exit_code == 2 and "not valid TOML" in result.stderr


def test_connector_tables_of_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A table named after a connector's kind is allowed (and read by `scan`); others are not."""
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "steward.toml"
    config.write_text('[postgres.sockets]\n"/run/pg" = "db.internal"\n[qdrant]\n')
    assert CliRunner().invoke(cli, ["init"]).exit_code == 0
    config.write_text("[postgress]\n")
    result = CliRunner().invoke(cli, ["init"])
    assert result.exit_code == 2
    assert "unknown table [postgress]" in result.stderr and "[postgres]" in result.stderr
    config.write_text('[postgres]\nurl = "postgres://elsewhere/db"\n')
    result = CliRunner().invoke(cli, ["scan", "postgres://nohost.invalid/db"])
    assert result.exit_code == 2 and "[postgres] 'url' is not a setting" in result.stderr
    config.write_text('[postgres.sockets]\n"run/pg" = "db.internal"\n')
    result = CliRunner().invoke(cli, ["scan", "postgres://nohost.invalid/db"])
    assert result.exit_code == 2
    assert "steward.toml [postgres] sockets: Value error, 'run/pg' is not an absolute" in (
        result.stderr
    )


def test_every_command_has_help_and_a_readme_section() -> None:
    readme = (REPO / "README.md").read_text()
    runner = CliRunner()
    for name in COMMANDS:
        result = runner.invoke(cli, [name, "--help"])
        assert result.exit_code == 0, name
        assert len(result.stdout) > 200, f"{name} --help says too little"
        assert SHORT_HELP.get(name), f"{name} has no short help"
        assert re.search(rf"steward {name}\b", readme), f"README does not document {name}"


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and re.match(r"steward, version \d+\.\d+", result.stdout)


def test_root_help_imports_no_heavy_module() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from catalog.cli import cli\n"
        "r = CliRunner().invoke(cli, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "heavy = [m for m in ('networkx', 'qdrant_client', 'psycopg', 'sqlalchemy', 'fastapi')\n"
        "         if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_console_script_runs() -> None:
    exe = Path(sys.executable).with_name("steward")
    out = subprocess.run([str(exe), "--help"], capture_output=True, text=True, check=True)
    assert "Exit codes" in out.stdout
