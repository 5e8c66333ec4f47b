"""`steward demo`: the main job in one command, and the README's first line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from catalog.cli import cli
from tests.conftest import REPO
from tests.pg import require_postgres

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"

#: The problems the demo plants, and nothing else.
PLANTED = {
    ("stale_embeddings", "error", "support_docs"),
    ("feature_definition_skew", "error", "churn"),
    ("feature_definition_skew", "error", "user_activity"),
    ("feature_value_skew", "warning", "user_activity"),
    # The model trained in an MLflow run that logged no input, served as @production.
    ("untracked_lineage", "warning", "propensity"),
}


def planted(findings: list[dict[str, object]]) -> set[tuple[str, str, str]]:
    return {
        (str(f["rule"]), str(f["severity"]), str(f["assets"][0]).rsplit("/", 1)[1])  # type: ignore[index]
        for f in findings
    }


def test_demo_plants_exactly_its_findings_and_is_repeatable(tmp_path: Path) -> None:
    require_postgres()
    target = tmp_path / "demo"
    runner = CliRunner()
    first = runner.invoke(cli, ["demo", str(target), "--postgres", ADMIN], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    report = Path(first.stdout.strip())
    assert report == target.resolve() / "report.html" and report.is_file()
    catalog = f"sqlite:///{target / 'steward.db'}"
    findings = json.loads(runner.invoke(cli, ["--catalog", catalog, "findings", "--json"]).stdout)
    assert planted(findings) == PLANTED
    stale = next(f for f in findings if f["rule"] == "stale_embeddings")
    assert stale["evidence"]["built_with"] == ["demo-embed@1"]
    assert stale["evidence"]["in_use"] == "2"
    # What they put at risk is traced downstream.
    skew = next(
        f
        for f in findings
        if f["rule"] == "feature_definition_skew" and f["assets"][0].endswith("/user_activity")
    )
    assert {r["uri"].rsplit("/", 1)[1] for r in skew["at_risk"]} >= {"churn"}
    # The source schema in PostgreSQL was scanned and ties in.
    assets = json.loads(runner.invoke(cli, ["--catalog", catalog, "assets", "--json"]).stdout)
    names = {a["name"] for a in assets}
    assert "steward_demo.public.events" in names and "steward_demo.public.daily_clicks" in names
    assert not [a["uri"] for a in assets if a["unresolved"]]

    before = report.read_bytes()
    versions = [(a["uri"], a["version"]) for a in assets]
    second = runner.invoke(cli, ["demo", str(target), "--postgres", ADMIN], catch_exceptions=False)
    assert second.exit_code == 0, second.output
    again = json.loads(runner.invoke(cli, ["--catalog", catalog, "assets", "--json"]).stdout)
    assert [(a["uri"], a["version"]) for a in again] == versions
    assert report.read_bytes() == before


def test_demo_without_postgres_says_why(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["demo", str(tmp_path / "d"), "--no-postgres"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "PostgreSQL part skipped" in result.stderr
    # Progress of the slow step, and every point written (read back by the real client).
    for name in ("support_docs", "product_docs"):
        assert f"{name}: 1,500 of 1,500 points written" in result.stderr
    from qdrant_client import QdrantClient

    client = QdrantClient(path=str(tmp_path / "d" / "qdrant"))
    try:
        assert client.count("support_docs").count == client.count("product_docs").count == 1500
        point = client.retrieve("support_docs", [7], with_vectors=True)[0]
        assert point.payload and point.payload["text"].startswith("support_docs ")
    finally:
        client.close()
    # A server that does not answer: skipped with the reason, the rest done (run
    # again in the same folder: its collections are not written twice).
    unreachable = CliRunner().invoke(
        cli,
        ["demo", str(tmp_path / "d"), "--postgres", "postgresql://x@127.0.0.1:1/postgres"],
        catch_exceptions=False,
    )
    assert unreachable.exit_code == 0
    assert "PostgreSQL part skipped: PostgreSQL:" in unreachable.stderr
    assert unreachable.stdout.strip() == str((tmp_path / "d" / "report.html").resolve())


def readme_first_command() -> str:
    text = (REPO / "README.md").read_text()
    setup = text.split("## Set up", 1)[1]
    return re.findall(r"```sh\n(.+?)\n```", setup, re.S)[0].strip()


@pytest.mark.slow
def test_readme_first_line_on_a_fresh_copy(tmp_path: Path) -> None:
    """The README's first command, literally, in a copy of the repository."""
    command = readme_first_command()
    assert "\n" not in command and "steward demo" in command
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    copy = tmp_path / "clone"
    for name in filter(None, files):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "STEWARD_"))}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if Path(sys.executable).parent != Path(p)
    )
    result = subprocess.run(
        command, shell=True, cwd=copy, env=env, capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (copy / "steward-demo" / "report.html").is_file()
    assert "stale" in (copy / "steward-demo" / "report.html").read_text().lower()
