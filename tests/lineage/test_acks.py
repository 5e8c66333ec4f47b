"""Acknowledging a finding: recorded with who and when, honoured by the gate, shown in the
report, re-opened when the condition changes or the time runs out."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from sqlalchemy import update

from catalog.db import Store
from catalog.models import FindingAck
from tests.lineage.test_rules import Catalog, collection, models, vectors


class AckText(HTMLParser):
    """The text of every element of class `ack` in a page."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0
        self.found: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += 1
        elif "ack" in (dict(attrs).get("class") or "").split():
            self.depth = 1
            self.found.append("")

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.found[-1] += data


def stale_stack(steward: Catalog, tmp_path: Path, revision: str = "1") -> Path:
    """A Qdrant collection (written by the real client) built with m@1 while m@2 is in use."""
    store = tmp_path / "qdrant"
    collection(store, "old", vectors(), {"embedding_model": "m", "embedding_revision": revision})
    return store


def checked_stale_stack(tmp_path: Path) -> tuple[Catalog, dict[str, Any]]:
    """The stale stack scanned and checked: the catalog and its one finding."""
    steward = Catalog(tmp_path)
    store = stale_stack(steward, tmp_path)
    models(steward)
    steward.ok("scan", f"qdrant+local://{store}")
    steward.run("check", "--rule", "stale_embeddings")
    (stale,) = open_findings(steward)
    return steward, stale


def open_findings(steward: Catalog) -> list[dict[str, Any]]:
    """The open findings, but untracked_lineage's (the stack's collection names no source:
    that warning is tests/lineage/test_coverage.py's)."""
    found = json.loads(steward.ok("findings", "--json").stdout)
    return [f for f in found if f["rule"] != "untracked_lineage"]


def test_ack_round_trip_through_check_findings_and_report(tmp_path: Path) -> None:
    steward = Catalog(tmp_path)
    store = stale_stack(steward, tmp_path)
    models(steward)
    steward.ok("scan", f"qdrant+local://{store}")
    assert steward.run("check", "--fail-on", "error").exit_code == 1
    (stale,) = open_findings(steward)
    assert stale["rule"] == "stale_embeddings" and stale["acknowledged"] is None

    done = steward.ok("findings", "ack", stale["id"][:6], "--reason", "reindex on Friday")
    assert "acknowledged " + stale["id"] in done.stderr
    (acked,) = open_findings(steward)
    ack = acked["acknowledged"]
    assert ack["reason"] == "reindex on Friday" and ack["by"] == getpass.getuser()
    assert ack["until"] is None
    at = datetime.fromisoformat(ack["at"].replace("Z", "+00:00"))
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=5)

    # The gate passes; the finding is still reported, marked.
    gate = steward.run("check", "--fail-on", "error")
    assert gate.exit_code == 0, gate.output
    assert "acknowledged by" in gate.stdout and stale["id"][:10] in gate.stdout
    listed = steward.ok("findings").stdout
    assert "acknowledged by" in listed and "Re-embed old" in listed  # the remedy column
    report = tmp_path / "report.html"
    steward.ok("report", "-o", str(report))
    acks = [" ".join(t.split()) for t in AckText(report.read_text()).found]
    assert acks and all("reindex on Friday" in t and getpass.getuser() in t for t in acks)

    # Withdrawn: the gate fails again.
    steward.ok("findings", "unack", stale["id"])
    assert open_findings(steward)[0]["acknowledged"] is None
    assert steward.run("check", "--fail-on", "error").exit_code == 1


def test_an_ack_ends_when_the_condition_changes(tmp_path: Path) -> None:
    steward = Catalog(tmp_path)
    store = stale_stack(steward, tmp_path)
    for revision in ("1", "2", "3"):
        steward.ok(
            "models", "register", "m", "--revision", revision, "--dim", "16", "--distance", "cosine"
        )
    steward.ok("models", "use", "m", "2")
    steward.ok("scan", f"qdrant+local://{store}")
    steward.run("check")
    (stale,) = open_findings(steward)
    steward.ok("findings", "ack", stale["id"], "--reason", "known")
    assert steward.run("check").exit_code == 0
    # Queries move to m@3: the same finding, other evidence: it counts again.
    steward.ok("models", "use", "m", "3")
    gate = steward.run("check", "--json")
    assert gate.exit_code == 1
    (again,) = [f for f in json.loads(gate.stdout) if f["rule"] != "untracked_lineage"]
    assert again["id"] == stale["id"] and again["acknowledged"] is None
    (listed,) = open_findings(steward)
    assert listed["last_acknowledgement"]["ended_because"] == "the condition changed"
    assert "re-opened: the condition changed" in steward.ok("findings").stdout


def test_an_ack_ends_when_its_time_runs_out(tmp_path: Path) -> None:
    steward, stale = checked_stale_stack(tmp_path)
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    steward.ok("findings", "ack", stale["id"], "--reason", "for a day", "--until", tomorrow)
    (acked,) = open_findings(steward)
    assert acked["acknowledged"]["until"].startswith(
        (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    )  # a date alone: through that day
    assert steward.run("check").exit_code == 0
    # Time passes (the stored limit is moved into the past).
    db = Store(steward.url)
    with db.write() as conn:
        conn.execute(
            update(FindingAck.__table__).values(  # type: ignore[attr-defined]
                until=datetime.now(UTC) - timedelta(seconds=1)
            )
        )
    db.dispose()
    assert steward.run("check").exit_code == 1
    (listed,) = open_findings(steward)
    assert listed["acknowledged"] is None
    assert listed["last_acknowledgement"]["ended_because"] == "expired"


def test_ack_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    steward, stale = checked_stale_stack(tmp_path)
    for args, message in [
        (["ack", "zz", "--reason", "x"], "too short"),
        (["ack", "ffffffff", "--reason", "x"], "no finding 'ffffffff'"),
        (["ack", stale["id"], "--reason", " "], "needs a reason"),
        (["ack", stale["id"], "--reason", "x", "--until", "2020-01-01"], "in the past"),
        (["unack", stale["id"]], "is not acknowledged"),
    ]:
        result = steward.run("findings", *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert steward.run("findings", "ack", stale["id"]).exit_code == 2  # --reason is required
    assert open_findings(steward)[0]["acknowledged"] is None
