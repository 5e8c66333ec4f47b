"""Native feature definitions and feature value samples, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from catalog.cli import cli
from catalog.db import Store
from catalog.queries import resolve
from catalog.samples import load_feature_samples
from connectors.features import normalize_transformation

CLICKS = "count(*) FILTER (WHERE kind = 'click' AND ts > now() - interval '7 days')"

DEFINITIONS = f"""
[entities.user_id]
join_keys = ["user_id"]

[feature_sets.user_activity]
entities = ["user_id"]
source = "postgres://db.internal:5432/shop.public.events"
owner = "ml-platform"
description = "Activity aggregates per user"

[feature_sets.user_activity.features.clicks_7d]
dtype = "int64"
offline = "{CLICKS}"
online = "{CLICKS}"

[feature_sets.user_activity.features.country]
dtype = "string"
offline = "coalesce(country, 'unknown')"
online = "coalesce(country, 'unknown')"

[models.churn]
features = ["user_activity"]
trained_on = {{ user_activity = 1 }}
"""


def steward(catalog: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--catalog", catalog, *args], catch_exceptions=False)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "features.toml"
    path.write_text(DEFINITIONS)
    return path


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'catalog.db'}"


def assets(catalog: str) -> dict[str, dict[str, object]]:
    return {a["name"]: a for a in json.loads(steward(catalog, "assets", "--json").stdout)}


def test_scan_registers_feature_sets_models_and_lineage(repo: Path, catalog: str) -> None:
    result = steward(catalog, "scan", str(repo), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["summary"]["created"] == 2
    found = assets(catalog)
    fs = found["user_activity"]
    assert fs["kind"] == "feature_set" and fs["namespace"] == f"features://{repo}"
    assert [(f["name"], f["type"]) for f in fs["fields"]] == [
        ("clicks_7d", "int64"),
        ("country", "string"),
    ]
    # The source dataset is a lineage edge (an unresolved asset until something describes it).
    assert found["shop.public.events"]["unresolved"] is True
    shown = json.loads(steward(catalog, "show", "user_activity", "--json").stdout)
    assert shown["upstream"] == [
        {"uri": "postgres://db.internal:5432/shop.public.events", "kind": "feature_source"}
    ]
    assert shown["observed"]["owner"] == "ml-platform"
    model = json.loads(steward(catalog, "show", "churn", "--json").stdout)
    assert model["kind"] == "model"
    assert model["upstream"] == [{"uri": fs["uri"], "kind": "feature_input"}]
    assert model["properties"]["trained_on"] == {fs["uri"]: 1}


def test_rescan_unchanged_writes_nothing_and_formatting_does_not_count(
    repo: Path, catalog: str
) -> None:
    steward(catalog, "scan", str(repo))
    reformatted = DEFINITIONS.replace(
        CLICKS, "COUNT(*)   filter (where KIND = 'click'   AND ts > NOW() - INTERVAL '7 days')"
    )
    assert reformatted != DEFINITIONS
    repo.write_text(reformatted)
    again = json.loads(steward(catalog, "scan", str(repo), "--json").stdout)
    assert again["summary"] == {"created": 0, "changed": 0, "unchanged": 2, "deleted": 0}


def test_changed_transformation_is_a_new_version_naming_feature_and_side(
    repo: Path, catalog: str
) -> None:
    steward(catalog, "scan", str(repo))
    repo.write_text(
        DEFINITIONS.replace(
            "online = \"coalesce(country, 'unknown')\"", "online = \"coalesce(country, '')\""
        )
    )
    result = json.loads(steward(catalog, "scan", str(repo), "--json").stdout)
    (change,) = result["changes"]
    assert change["action"] == "update" and change["version"] == 2
    (detail,) = change["diff"]["changed"]
    assert (detail["field"], detail["key"]) == ("country", "online")
    assert "''" in detail["to"] and "'unknown'" in detail["from"]
    history = json.loads(steward(catalog, "history", "user_activity", "--json").stdout)
    assert [v["version"] for v in history] == [1, 2]


def test_plan_writes_nothing(repo: Path, catalog: str) -> None:
    result = steward(catalog, "scan", str(repo), "--plan")
    assert result.exit_code == 0 and "+ create" in result.stdout
    assert assets(catalog) == {}


def test_removed_feature_set_is_marked_deleted(repo: Path, catalog: str) -> None:
    steward(catalog, "scan", str(repo))
    repo.write_text(DEFINITIONS.split("[models.churn]")[0])
    summary = json.loads(steward(catalog, "scan", str(repo), "--json").stdout)["summary"]
    assert summary["deleted"] == 1
    assert assets(catalog)["churn"]["deleted"] is True


def test_directory_of_definitions(tmp_path: Path, catalog: str) -> None:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "sets.toml").write_text(DEFINITIONS.split("[models.churn]")[0])
    (folder / "models.toml").write_text('[models.ltv]\nfeatures = ["user_activity"]\n')
    result = steward(catalog, "scan", str(folder), "--json")
    assert result.exit_code == 0, result.output
    model = json.loads(steward(catalog, "show", "ltv", "--json").stdout)
    assert model["upstream"][0]["uri"].endswith("sets.toml/user_activity")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda t: t.replace('owner = "ml-platform"', 'owner = "x"\nownr = "y"'),
            "[feature_sets.user_activity] unknown key 'ownr'",
        ),
        (
            lambda t: t.replace('dtype = "int64"\n', ""),
            "[feature_sets.user_activity.features.clicks_7d] missing key 'dtype'",
        ),
        (
            lambda t: t.replace('entities = ["user_id"]\nsource', 'entities = ["account"]\nsource'),
            "[feature_sets.user_activity] 'entities' names undefined entity 'account'",
        ),
        (
            lambda t: t.replace('features = ["user_activity"]', 'features = ["user_actvity"]'),
            "[models.churn] 'trained_on' names 'user_activity', not in 'features'",
        ),
        (
            lambda t: t.replace("trained_on = { user_activity = 1 }", "").replace(
                'features = ["user_activity"]', 'features = ["nope"]'
            ),
            "[models.churn] 'features' names undefined feature set 'nope'",
        ),
        (lambda t: t + "\n[feature_stes.x]\n", "unknown table [feature_stes]"),
        (lambda t: t.replace("[models.churn]", "[models.churn"), "not valid TOML"),
        (
            lambda t: t.replace('"postgres://db.internal:5432/shop.public.events"', '"events"'),
            "[feature_sets.user_activity] 'source'",
        ),
    ],
)
def test_invalid_definitions_name_file_table_and_key(
    repo: Path, catalog: str, edit: object, message: str
) -> None:
    repo.write_text(edit(DEFINITIONS))  # type: ignore[operator]
    result = CliRunner().invoke(cli, ["--catalog", catalog, "scan", str(repo)])
    assert result.exit_code == 2
    assert str(repo) in result.stderr and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert assets(catalog) == {}


def test_missing_file(tmp_path: Path, catalog: str) -> None:
    result = CliRunner().invoke(cli, ["--catalog", catalog, "scan", str(tmp_path / "no.toml")])
    assert result.exit_code == 2 and "no such file" in result.stderr


def test_normalisation() -> None:
    assert normalize_transformation("A  +  b") == normalize_transformation("a+B")
    assert normalize_transformation("x = 'A'") != normalize_transformation("x = 'a'")
    assert normalize_transformation('"Col" + 1') != normalize_transformation('"col" + 1')
    assert normalize_transformation("coalesce(x, 0)") != normalize_transformation("coalesce(x, 1)")


def test_samples_are_stored_for_the_checks(repo: Path, catalog: str, tmp_path: Path) -> None:
    steward(catalog, "scan", str(repo))
    offline = tmp_path / "offline.csv"
    offline.write_text("user_id,clicks_7d,country\n1,3,de\n2,5,fr\n3,,de\n")
    online = tmp_path / "online.ndjson"
    online.write_text(
        '{"user_id": 1, "clicks_7d": 3, "country": "de"}\n'
        '{"user_id": 2, "clicks_7d": 0, "country": ""}\n'
    )
    result = steward(
        catalog,
        "features",
        "sample",
        "user_activity",
        "--offline",
        str(offline),
        "--online",
        str(online),
        "--json",
    )
    assert result.exit_code == 0, result.output
    stored = json.loads(result.stdout)["samples"]
    assert [s["rows"] for s in stored] == [3, 2]
    assert stored[0]["features"]["clicks_7d"]["nulls"] == 1
    store = Store(catalog)
    with store.session() as s:
        samples = load_feature_samples(s, resolve(s, "user_activity"))
    assert samples["offline"].keys == {"user_id": [1, 2, 3]}
    assert samples["online"].features["country"] == ["de", ""]
    store.dispose()


def test_bad_sample_files_store_nothing(repo: Path, catalog: str, tmp_path: Path) -> None:
    steward(catalog, "scan", str(repo))
    good = tmp_path / "good.csv"
    good.write_text("user_id,clicks_7d\n1,3\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("account,clicks_7d\n1,3\n")
    result = CliRunner().invoke(
        cli,
        [
            "--catalog",
            catalog,
            "features",
            "sample",
            "user_activity",
            "--offline",
            str(good),
            "--online",
            str(bad),
        ],
    )
    assert result.exit_code == 2 and "missing entity column 'user_id'" in result.stderr
    store = Store(catalog)
    with store.session() as s:
        assert load_feature_samples(s, resolve(s, "user_activity")) == {}
    store.dispose()
