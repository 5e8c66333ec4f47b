"""The text output shows the why: a collection's model and points, edge kinds, findings."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.lineage.test_acks import checked_stale_stack
from tests.lineage.test_rules import Catalog, collection, models, vectors
from tests.serving import STEWARD


def test_show_a_collection_says_its_model_points_and_properties(tmp_path: Path) -> None:
    steward, _ = checked_stale_stack(tmp_path)
    text = steward.ok("show", "old").stdout
    assert "embedding model: m@1  (from metadata)" in text
    assert "points: 300" in text
    assert "properties:" in text and "hnsw:" in text
    assert "vector  vector(16) not null  [dim=16 distance=cosine" in text


def test_lineage_text_has_edge_kinds_and_finding_marks(tmp_path: Path) -> None:
    steward, stale = checked_stale_stack(tmp_path)
    up = steward.ok("lineage", "upstream", "old").stdout.splitlines()
    assert up[0].endswith("/old  ! error stale_embeddings")
    (model,) = [line for line in up if "[embedding_model]" in line]
    assert model.strip().startswith("model://") and "--embedded_by_model-->" in model
    steward.ok("findings", "ack", stale["id"], "--reason", "known")
    down = steward.ok("lineage", "downstream", model.split()[0]).stdout.splitlines()
    (old,) = [line for line in down if "/old " in line]
    assert "<--embedded_by_model--" in old
    assert old.endswith("! error stale_embeddings (acknowledged)")


def test_verbose_shows_migrations_not_alembic_set_up(tmp_path: Path) -> None:
    catalog = str(tmp_path / "new.db")
    first = subprocess.run(
        [STEWARD, "-v", "--catalog", catalog, "assets"], capture_output=True, text=True, check=True
    )
    assert "Running upgrade" in first.stderr
    assert "Context impl" not in first.stderr and "Will assume" not in first.stderr
    again = subprocess.run(
        [STEWARD, "-v", "--catalog", catalog, "assets"], capture_output=True, text=True, check=True
    )
    assert "alembic" not in again.stderr


def test_findings_all_shows_which_are_resolved(tmp_path: Path) -> None:
    steward, stale = checked_stale_stack(tmp_path)
    steward.ok("models", "use", "m", "1")  # queries now use what built it: fixed
    assert steward.run("check", "--rule", "stale_embeddings").exit_code == 0
    assert stale["id"][:10] not in steward.ok("findings").stdout
    (row,) = [line for line in steward.ok("findings", "--all").stdout.splitlines()[1:]]
    assert row.startswith(stale["id"][:10]) and " resolved 20" in row


def test_finding_titles_carry_the_decisive_fact(tmp_path: Path) -> None:
    _, stale = checked_stale_stack(tmp_path)
    assert stale["title"].endswith("/old is built with m@1; queries use m@2")
    steward = Catalog(tmp_path / "other")
    store = tmp_path / "other" / "qdrant"
    collection(store, "small", vectors(), {"embedding_model": "m", "embedding_revision": "2"})
    models(steward, dim=384)
    steward.ok("scan", f"qdrant+local://{store}")
    (mismatch,) = steward.check("embedding_mismatch")
    assert mismatch["title"].endswith("does not fit m@2: dimension 16, model expects 384")
