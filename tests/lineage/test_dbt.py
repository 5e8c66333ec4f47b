"""A real dbt project, run through openlineage-dbt's `dbt-ol` into a real `steward serve`,
and a `steward scan` of the same PostgreSQL database: the two witnesses agree.

dbt-core (below 1.12, which downloads a binary when it is built), dbt-postgres and
openlineage-dbt pin what steward's own environment pins differently, so they live in
a virtual environment of this test's own, built once with pip and cached under
~/.cache/steward-tests. Without it (no package index here) the test skips; on CI
(CI=true) that is a failure.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from catalog.cli import cli
from tests.pg import PG_HOST, PG_PORT, PG_USER, temporary_database
from tests.serving import steward_serve

PROJECT = Path(__file__).resolve().parent.parent / "fixtures" / "dbt_shop"
PINS = ("dbt-core>=1.8,<1.12", "dbt-postgres>=1.8,<1.12", "openlineage-dbt>=1.20")
CACHE = Path(os.environ.get("STEWARD_TEST_CACHE", Path.home() / ".cache" / "steward-tests"))
NAMESPACE = f"postgres://{PG_HOST}:{PG_PORT}"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def dbt_bin() -> Path:
    """The bin directory of a virtual environment with dbt-postgres and dbt-ol."""
    tag = hashlib.sha256(f"{sys.version_info[:2]}{PINS}".encode()).hexdigest()[:12]
    home = CACHE / f"dbt-{tag}"
    bin_dir = home / "bin"
    if (home / ".complete").exists():
        return bin_dir
    shutil.rmtree(home, ignore_errors=True)
    home.parent.mkdir(parents=True, exist_ok=True)
    try:
        venv.EnvBuilder(with_pip=True).create(home)
        done = subprocess.run(
            [str(bin_dir / "python"), "-m", "pip", "install", "-q", *PINS],
            capture_output=True,
            text=True,
            timeout=900,
        )
    except (OSError, subprocess.SubprocessError) as err:
        _unavailable(f"cannot build the dbt environment: {err}")
    if done.returncode != 0 or not (bin_dir / "dbt-ol").exists():
        _unavailable(f"cannot install {' '.join(PINS)}: {done.stderr.strip()[-500:]}")
    (home / ".complete").write_text("\n".join(PINS))
    return bin_dir


class Shop:
    """The dbt project in a directory of its own, its database, and a served catalog."""

    def __init__(self, root: Path, bin_dir: Path, database: str, base: str, catalog: Path):
        self.dir = root / "shop"
        shutil.copytree(PROJECT, self.dir)
        self.database = database
        self.catalog = catalog
        self.emitted = 0
        self.env = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "DBT_PROFILES_DIR": str(self.dir),
            "SHOP_HOST": PG_HOST,
            "SHOP_PORT": str(PG_PORT),
            "SHOP_USER": PG_USER,
            "SHOP_DB": database,
            "OPENLINEAGE_URL": base,
            "OPENLINEAGE_NAMESPACE": "dbt",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        self.env.pop("OPENLINEAGE_CONFIG", None)
        self.bin = bin_dir

    def dbt(self, *args: str, lineage: bool = True, check: bool = True) -> str:
        """Run dbt (through dbt-ol when `lineage`), wait until steward has its events."""
        command = [str(self.bin / ("dbt-ol" if lineage else "dbt")), *args]
        done = subprocess.run(
            command, cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=600
        )
        output = done.stdout + done.stderr
        if check:
            assert done.returncode == 0, output[-3000:]
        if lineage:
            found = re.search(r"Emitted (\d+) OpenLineage events", output)
            assert found, output[-3000:]
            self.emitted += int(found.group(1))
            self._wait_for_events()
        return output

    def _wait_for_events(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with sqlite3.connect(self.catalog) as conn:
                (count,) = conn.execute(
                    "SELECT count(*) FROM raw_event WHERE status = 'accepted'"
                ).fetchone()
            if count >= self.emitted:
                return
            time.sleep(0.1)
        raise AssertionError(f"steward has {count} of the {self.emitted} events dbt-ol sent")

    def steward(self, *args: str) -> str:
        result = CliRunner().invoke(cli, ["--catalog", f"sqlite:///{self.catalog}", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result
        assert result.exit_code in (0, 1), result.output
        return result.stdout

    def scan(self) -> None:
        self.steward("scan", f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.database}")

    def findings(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = json.loads(self.steward("check", "--json"))
        return out

    def uri(self, table: str) -> str:
        return f"{NAMESPACE}/{self.database}.analytics.{table}"

    def show(self, table: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.steward("show", "--json", self.uri(table)))
        return out

    def upstream(self, table: str) -> set[str]:
        data = json.loads(self.steward("lineage", "upstream", "--json", self.uri(table)))
        return {node["uri"] for node in data["nodes"]}

    def manifest_edges(self) -> set[tuple[str, str]]:
        """(parent, child) tables of dbt's own DAG, from its manifest."""
        manifest = json.loads((self.dir / "target" / "manifest.json").read_text())
        nodes = manifest["nodes"]

        def table(unique_id: str) -> str:
            return str(nodes[unique_id]["alias"])

        return {
            (table(parent), table(uid))
            for uid, node in nodes.items()
            if node["resource_type"] in ("model", "seed")
            for parent in node.get("depends_on", {}).get("nodes", [])
            if parent in nodes
        }

    def edit(self, model: str, old: str, new: str) -> None:
        path = self.dir / "models" / f"{model}.sql"
        text = path.read_text()
        assert old in text
        path.write_text(text.replace(old, new))


@pytest.fixture
def shop(tmp_path: Path, dbt_bin: Path) -> Iterator[Shop]:
    catalog = tmp_path / "catalog.db"
    runner = CliRunner().invoke(cli, ["--catalog", f"sqlite:///{catalog}", "init"])
    assert runner.exit_code == 0, runner.output
    with (
        temporary_database("steward_dbt") as database,
        steward_serve(f"sqlite:///{catalog}", tmp_path / "serve.log") as served,
    ):
        yield Shop(tmp_path, dbt_bin, database, served.base, catalog)


def _titles(findings: list[dict[str, Any]]) -> list[str]:
    return [f"{f['rule']}: {f['title']}" for f in findings]


def _assert_dag_in_catalog(shop: Shop) -> None:
    edges = shop.manifest_edges()
    assert ("raw_customers", "stg_customers") in edges  # what the project says
    for parent, child in sorted(edges):
        assert shop.uri(parent) in shop.upstream(child), f"{parent} -> {child} missing"


def _assert_documented(shop: Shop) -> None:
    shown = shop.show("stg_customers")
    facets = shown["observed"]["openlineage"]
    assert facets["documentation"]["description"] == "One row per customer, cleaned."
    names = {a["name"] for a in facets["dataQualityAssertions"]["assertions"]}
    assert names == {"unique_stg_customers_customer_id", "not_null_stg_customers_customer_id"}
    fields = {f["name"]: f for f in shown["fields"]}
    assert fields["customer_id"]["type"] == "integer"  # the scan's type
    assert fields["customer_id"]["description"] == "The customer's key."  # dbt's docs
    sources = {s["source"] for s in shown["sources"]}
    assert any(s.startswith("scan ") for s in sources), sources
    assert any(s.startswith("openlineage dbt/") for s in sources), sources


def test_dbt_events_then_scan_agree_and_one_real_break_is_found(shop: Shop) -> None:
    shop.dbt("build")
    shop.scan()
    assert _titles(shop.findings()) == []
    _assert_dag_in_catalog(shop)

    # `dbt docs generate` makes dbt-ol send typed schemas of every column from now on.
    shop.dbt("docs", "generate", lineage=False)
    shop.dbt("build")
    assert _titles(shop.findings()) == []
    shop.scan()
    assert _titles(shop.findings()) == []
    _assert_documented(shop)

    # A real break: stg_customers loses `name`, which customer_orders selects.
    shop.edit("stg_customers", "customer_id, name, email", "customer_id, email")
    shop.dbt("run", check=False)  # customer_orders fails to build: it needs `name`
    shop.scan()
    found = shop.findings()
    assert [f["rule"] for f in found] == ["breaking_schema_change"], _titles(found)
    (finding,) = found
    assert finding["assets"][0] == shop.uri("stg_customers")
    assert finding["evidence"]["broken_fields"] == {"name": "removed"}
    readers = {r["uri"]: r for r in finding["evidence"]["readers"]}
    assert shop.uri("customer_orders") in readers
    assert readers[shop.uri("customer_orders")]["fields"] == ["name"]
    assert all("email" not in r["fields"] for r in readers.values())

    # Fixed: the column is back, dbt rebuilds, the scan sees it; the finding resolves.
    shop.edit("stg_customers", "customer_id, email", "customer_id, name, email")
    shop.dbt("run")
    shop.scan()
    assert _titles(shop.findings()) == []
    with sqlite3.connect(shop.catalog) as conn:
        rows = conn.execute("SELECT id, status FROM finding").fetchall()
    assert rows == [(finding["id"], "resolved")]


def test_scan_then_dbt_events_agree(shop: Shop) -> None:
    shop.dbt("build", lineage=False)  # the tables exist before anything is sent
    shop.scan()
    assert _titles(shop.findings()) == []
    shop.dbt("build")
    assert _titles(shop.findings()) == []
    _assert_dag_in_catalog(shop)
    shop.scan()
    assert _titles(shop.findings()) == []
    shop.dbt("docs", "generate", lineage=False)
    shop.dbt("run")
    shop.scan()
    assert _titles(shop.findings()) == []
    shown = shop.show("customer_orders")
    assert shown["kind"] == "table"
    assert [f["name"] for f in shown["fields"]] == ["customer_id", "name", "orders", "total"]
