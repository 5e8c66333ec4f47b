"""Pure parsing and validation of OpenLineage events: no catalog, no server."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.openlineage import (
    DecodeFailed,
    EventRejected,
    canonical,
    digest_of,
    parse_event,
    split_documents,
)
from tests.conftest import FIXTURES

OL = FIXTURES / "openlineage"
RUN_ID = "3f5e83fa-3480-44ff-99c5-ff943904e5e8"


def event(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventType": "COMPLETE",
        "eventTime": "2024-06-01T12:00:00Z",
        "producer": "https://example.com/producer",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": RUN_ID},
        "job": {"namespace": "scheduler", "name": "daily.load"},
        "inputs": [{"namespace": "postgres://DB.example.com", "name": "shop.public.orders"}],
        "outputs": [],
    }
    base.update(changes)
    return base


def test_a_plain_event_maps_identity_and_normalises_namespaces() -> None:
    parsed = parse_event(event())
    assert parsed.kind == "run"
    assert parsed.run_id == RUN_ID
    assert parsed.job_uri == "job:scheduler/daily.load"
    # the same key the Postgres connector gives that table
    assert parsed.inputs[0].uri == "postgres://db.example.com:5432/shop.public.orders"
    assert parsed.warnings == []


def test_naive_event_time_is_taken_as_utc_with_a_warning() -> None:
    parsed = parse_event(event(eventTime="2020-12-28T19:51:01.641499"))
    assert parsed.event_time.tzinfo is not None
    assert parsed.event_time.hour == 19
    assert any(w.startswith("eventTime") for w in parsed.warnings)


@pytest.mark.parametrize(
    ("changes", "field", "status"),
    [
        ({"eventTime": "2021-11-03"}, "eventTime", 400),
        ({"eventTime": "yesterday"}, "eventTime", 400),
        ({"eventTime": None}, "eventTime", 422),
        ({"run": {"runId": None}}, "run.runId", 422),
        ({"run": {"runId": "not-a-uuid"}}, "run.runId", 422),
        ({"run": {}}, "run.runId", 422),
        ({"job": {"namespace": "ns", "name": None}}, "job.name", 422),
        ({"job": {"namespace": "", "name": "x"}}, "job.namespace", 422),
        ({"inputs": [{"namespace": "ns", "name": None}]}, "inputs[0].name", 422),
        ({"outputs": [{"name": "x"}]}, "outputs[0].namespace", 422),
        ({"inputs": {"namespace": "ns"}}, "inputs", 422),
    ],
)
def test_broken_identity_is_rejected_naming_the_field(
    changes: dict[str, Any], field: str, status: int
) -> None:
    with pytest.raises(EventRejected) as caught:
        parse_event(event(**changes))
    assert caught.value.field == field
    assert caught.value.status == status
    assert str(caught.value).startswith(field)


def test_an_unreadable_namespace_keeps_the_event_with_a_warning() -> None:
    parsed = parse_event(event(inputs=[{"namespace": "postgres://h:notaport", "name": "t"}]))
    assert parsed.inputs[0].uri == "postgres://h:notaport/t"
    assert any(w.startswith("inputs[0].namespace:") for w in parsed.warnings)


def test_jdbc_properties_in_a_namespace_are_dropped_with_their_password() -> None:
    """Marquez refuses this event (400); steward keeps it, without the password."""
    body = json.loads((OL / "marquez/negative/400_namespace_with_emoji.json").read_text())
    parsed = parse_event(body)
    assert parsed.inputs[0].namespace == "sqlserver://myhost:3342"
    assert "😂" not in repr(parsed)


def test_malformed_standard_facet_is_a_warning_and_not_projected() -> None:
    bad = event(
        outputs=[
            {
                "namespace": "ns",
                "name": "out",
                "facets": {
                    "schema": {"fields": [{"assertion": "a", "success": True}]},
                    "ownership": {"owners": [{"name": "team-a"}]},
                },
            }
        ]
    )
    parsed = parse_event(bad)
    out = parsed.outputs[0]
    assert out.fields is None
    assert "schema" not in out.facets
    assert out.facets["ownership"]["owners"] == [{"name": "team-a"}]
    assert any("outputs[0].facets.schema" in w and "name" in w for w in parsed.warnings)


def test_custom_facets_are_kept_with_a_warning() -> None:
    parsed = parse_event(event(run={"runId": RUN_ID, "facets": {"myCompany_cost": {"usd": 3}}}))
    assert parsed.run_facets["myCompany_cost"] == {"usd": 3}
    assert any("run.facets.myCompany_cost" in w for w in parsed.warnings)


def test_schema_symlinks_column_lineage_and_parent_are_mapped() -> None:
    out = {
        "namespace": "file",
        "name": "/tmp/tbl",
        "facets": {
            "schema": {"fields": [{"name": "a", "type": "long", "description": "the a"}]},
            "symlinks": {"identifiers": [{"namespace": "hive://meta", "name": "db.tbl"}]},
            "columnLineage": {
                "fields": {
                    "a": {"inputFields": [{"namespace": "file", "name": "/src", "field": "x"}]}
                }
            },
        },
    }
    parent = {
        "run": {"runId": "5f24c93c-1a1a-49dc-82e7-95ab4915242f"},
        "job": {"namespace": "airflow", "name": "dag"},
    }
    parsed = parse_event(event(outputs=[out], run={"runId": RUN_ID, "facets": {"parent": parent}}))
    ref = parsed.outputs[0]
    assert ref.fields == [{"name": "a", "type": "long", "description": "the a"}]
    assert ref.symlinks == [("hive://meta", "db.tbl")]
    assert ref.column_lineage == {"a": [("file", "/src", "x")]}
    assert parsed.parent is not None and parsed.parent.job_uri == "job:airflow/dag"


def test_dataset_and_job_events_are_recognised() -> None:
    dataset_event = json.loads((OL / "marquez/open_lineage/event_dataset_event.json").read_text())
    job_event = json.loads((OL / "marquez/open_lineage/event_job_event.json").read_text())
    assert parse_event(dataset_event).kind == "dataset"
    parsed = parse_event(job_event)
    assert parsed.kind == "job" and parsed.run_id is None


def test_missing_event_type_counts_as_running() -> None:
    body = json.loads((OL / "marquez/open_lineage/event_required_only.json").read_text())
    assert parse_event(body).event_type == "RUNNING"


def test_digest_ignores_key_order_and_spacing() -> None:
    a = event()
    b = json.loads(json.dumps(a, indent=3, sort_keys=True))
    assert digest_of(a) == digest_of(b)
    changed = copy.deepcopy(a)
    changed["eventType"] = "START"
    assert digest_of(changed) != digest_of(a)


def test_split_documents_reads_arrays_ndjson_and_marks_garbage() -> None:
    one = canonical(event())
    assert [v["eventType"] for _, v in split_documents(f"[{one},{one}]")] == ["COMPLETE"] * 2
    lines = list(split_documents(f"{one}\n\n{{broken\n{one}\n"))
    assert len(lines) == 3
    assert isinstance(lines[1][1], DecodeFailed)
    whole = list(split_documents("this is not json\nat all"))
    assert len(whole) == 1 and isinstance(whole[0][1], DecodeFailed)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON, keys=st.dictionaries(st.sampled_from(sorted(event())), JSON, max_size=4))
def test_parse_never_fails_other_than_by_rejecting(value: Any, keys: dict[str, Any]) -> None:
    for candidate in (value, event(**keys)):
        try:
            parse_event(candidate)
        except EventRejected as err:
            assert err.status in (400, 422)
            assert err.field


@pytest.mark.parametrize(
    "spelling",
    [
        RUN_ID,
        RUN_ID.upper(),
        "{" + RUN_ID + "}",
        "urn:uuid:" + RUN_ID,
        RUN_ID.replace("-", ""),
    ],
)
def test_a_run_id_is_kept_in_its_canonical_spelling(spelling: str) -> None:
    """Every spelling Python's `uuid.UUID` reads names the one run, as it writes it."""
    parent = {
        "_producer": "https://example.com/p",
        "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ParentRunFacet.json",
        "run": {"runId": spelling},
        "job": {"namespace": "airflow", "name": "dag"},
    }
    parsed = parse_event(event(run={"runId": spelling, "facets": {"parent": parent}}))
    assert parsed.run_id == str(uuid.UUID(spelling)) == RUN_ID.lower()
    assert parsed.parent is not None and parsed.parent.run_id == parsed.run_id


@pytest.mark.parametrize("bad", [RUN_ID[:-1], RUN_ID + "0", RUN_ID.replace("-", "_"), "g" * 32])
def test_a_run_id_that_is_not_a_uuid_is_refused(bad: str) -> None:
    with pytest.raises(EventRejected) as err:
        parse_event(event(run={"runId": bad}))
    assert err.value.field == "run.runId"


_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
_TEXT = st.text(_CHARS, max_size=8)
_FIELD = st.fixed_dictionaries(
    {"name": _TEXT.filter(lambda name: name.strip() != "")},
    optional={
        "type": st.none() | _TEXT,
        "description": st.none() | _TEXT | st.integers() | st.booleans(),
        "extra": st.integers(),
    },
)
_FIELDS = st.recursive(
    st.lists(_FIELD, max_size=4),
    lambda nested: st.lists(
        st.tuples(_FIELD, nested).map(lambda pair: {**pair[0], "fields": pair[1]}), max_size=3
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(_FIELDS)
def test_a_schemas_definition_is_the_one_its_specs_give(fields: list[dict[str, Any]]) -> None:
    """Whatever fields a schema facet that passes its check holds (nested ones, types
    left out, descriptions that are not text, keys of its own), the definition built
    straight from them is the one `FieldSpec` and `AssetSpec` give, key order too, and
    so is its fingerprint."""
    from catalog.specs import AssetSpec, FieldSpec
    from catalog.versioning import fingerprint
    from lineage.facets import check_facets
    from lineage.openlineage import dataset_definition, field_specs, schema_fingerprint

    warnings: list[str] = []
    checked = check_facets({"schema": {"fields": fields}}, "facets", warnings, [])
    assert "schema" in checked, warnings  # the strategy makes only fields that pass
    spec = AssetSpec(
        namespace="postgres://db:5432",
        name="shop.public.orders",
        kind="dataset",
        fields=[FieldSpec(**one) for one in field_specs(fields)],
    )
    built = dataset_definition(fields)
    assert built == spec.definition()
    assert json.dumps(built) == json.dumps(spec.definition())
    assert schema_fingerprint(fields) == fingerprint(spec.definition())
