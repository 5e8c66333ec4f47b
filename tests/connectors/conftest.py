"""Feast repositories applied once a session and copied into each test that uses one.

`feast apply` and `materialize` are most of a Feast test's cost. A copy of an
applied repository is an applied repository: its registry, online store and
parquet files are in it, under relative paths. One thing is not relative: the
registry records the online store's tables by absolute path, and the next
`feast apply` tears down the tables it recorded. So a repository is applied in
one folder and then copied once more: every test copies that second copy,
whose registry names the first folder's tables, which no test reads. A test's
own `feast apply` then tears down nothing another test reads.
"""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest


def copy_feast_repo(template: Path, target: Path) -> Path:
    """A test's own copy of an applied repository (`target` must not exist)."""
    shutil.copytree(template, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def applied_template(applied: Path, factory: pytest.TempPathFactory) -> Path:
    """A copy of `applied` that no registry names, to copy from (see the module's doc)."""
    return copy_feast_repo(applied, factory.mktemp("feast-template") / applied.name)


@pytest.fixture(scope="session")
def feast_shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop repository of `test_feast`, applied with the `feast` CLI and materialised
    (three users, an hour old); copy it with `copy_feast_repo` before changing it."""
    pytest.importorskip("feast", reason="the feast extra is not installed: pip install '.[feast]'")
    import pandas as pd
    from feast import FeatureStore

    from tests.connectors.test_feast import DEFINITIONS, FEATURE_STORE_YAML, feast_apply

    path = tmp_path_factory.mktemp("feast-shop") / "repo"
    (path / "data").mkdir(parents=True)
    (path / "feature_store.yaml").write_text(FEATURE_STORE_YAML)
    (path / "definitions.py").write_text(DEFINITIONS)
    now = datetime.now(UTC)
    pd.DataFrame(
        {
            "user_id": [1, 2, 3],
            "clicks_7d": [3, 5, 7],
            "country": ["de", "fr", "de"],
            "event_timestamp": [now - timedelta(hours=1)] * 3,
        }
    ).to_parquet(path / "data" / "activity.parquet")
    feast_apply(path)
    FeatureStore(repo_path=str(path)).materialize_incremental(end_date=now)
    return applied_template(path, tmp_path_factory)
