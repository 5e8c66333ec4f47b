from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from catalog.errors import InvalidInput
from catalog.specs import AssetSpec, FieldSpec
from catalog.versioning import canonical_json, diff_definitions, fingerprint

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(st.text(), json_values, max_size=8))
def test_fingerprint_does_not_depend_on_key_order(data: dict[str, Any]) -> None:
    reordered = dict(reversed(list(data.items())))
    assert fingerprint(data) == fingerprint(reordered)


def test_fingerprint_changes_with_content() -> None:
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})
    assert len(fingerprint({})) == 64


def _standard(value: Any) -> str:
    """The text every fingerprint was taken over: the standard library's."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


#: What definitions hold, and what could trip orjson's writing up: floats of any size
#: (orjson writes some without the exponent Python writes), NaN and infinities, keys
#: that are not text, integers past 64 bits, any text (escapes, line separators).
any_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text()
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=8)
    | st.floats()
    | st.sampled_from([6.25e-05, 1e16, 1e-7, -0.0, 123456789012345678.0, 0.5]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        | st.dictionaries(st.integers() | st.booleans() | st.none(), inner, max_size=3)
    ),
    max_leaves=24,
)


@settings(max_examples=1500, deadline=None)
@given(any_values)
@example({"b": 1, "a": {"é": [1, 2], "z": "v1.2", "\U0001f600": None}})
@example({"rate": 6.25e-05})
@example({"x": float("nan")})
@example({"x": [float("inf")]})
@example({1: "a", "1": "b"})
def test_canonical_json_is_the_standard_librarys_text(value: Any) -> None:
    """Whether orjson or the standard library writes it, the text is the same (or both
    refuse it): every fingerprint in a catalog was taken over the standard library's."""
    try:
        expected: str | None = _standard(value)
    except (TypeError, ValueError):
        expected = None
    if expected is None:
        with pytest.raises(InvalidInput):
            canonical_json(value)
    else:
        assert canonical_json(value) == expected


def test_canonical_json_writes_a_uuid_as_its_text() -> None:
    """The one difference: a UUID (or an enum) in a definition, which the standard
    library refused, is written as orjson writes it, the text a reader gets back."""
    value = uuid.UUID(int=7)
    assert canonical_json({"id": value}) == canonical_json({"id": str(value)})


def test_nan_is_refused() -> None:
    with pytest.raises(InvalidInput):
        canonical_json({"x": float("nan")})


def table(*fields: FieldSpec, **properties: Any) -> dict[str, Any]:
    return AssetSpec(
        namespace="postgres://h",
        name="d.s.t",
        kind="table",
        fields=list(fields),
        properties=properties,
    ).definition()


def test_diff_classifies_fields() -> None:
    old = table(
        FieldSpec(name="id", type="integer", nullable=False),
        FieldSpec(name="a", type="text"),
        FieldSpec(name="b", type="text"),
    )
    new = table(
        FieldSpec(name="id", type="bigint", nullable=False),
        FieldSpec(name="b", type="text"),
        FieldSpec(name="c", type="text"),
    )
    diff = diff_definitions(old, new)
    assert diff["added"] == [{"name": "c", "type": "text"}]
    assert diff["removed"] == [{"name": "a", "type": "text"}]
    assert [(c["field"], c["change"], c["from"], c["to"]) for c in diff["changed"]] == [
        ("id", "retyped", "integer", "bigint")
    ]
    assert diff["breaking"] is True


def test_added_nullable_field_is_not_breaking() -> None:
    old = table(FieldSpec(name="id", type="integer"))
    new = table(FieldSpec(name="id", type="integer"), FieldSpec(name="note", type="text"))
    assert diff_definitions(old, new)["breaking"] is False


def test_added_not_null_field_without_default_is_breaking() -> None:
    old = table(FieldSpec(name="id", type="integer"))
    strict = table(
        FieldSpec(name="id", type="integer"), FieldSpec(name="n", type="int", nullable=False)
    )
    defaulted = table(
        FieldSpec(name="id", type="integer"),
        FieldSpec(name="n", type="int", nullable=False, default="0"),
    )
    assert diff_definitions(old, strict)["breaking"] is True
    assert diff_definitions(old, defaulted)["breaking"] is False


def test_tightened_nullability_is_breaking_and_loosened_is_not() -> None:
    loose = table(FieldSpec(name="id", type="integer"))
    tight = table(FieldSpec(name="id", type="integer", nullable=False))
    assert diff_definitions(loose, tight)["breaking"] is True
    assert diff_definitions(tight, loose)["breaking"] is False


def test_vector_dimension_change_is_breaking() -> None:
    old = table(FieldSpec(name="emb", type="vector(384)", attributes={"dim": 384, "vector": True}))
    new = table(FieldSpec(name="emb", type="vector(384)", attributes={"dim": 768, "vector": True}))
    (change,) = diff_definitions(old, new)["changed"]
    assert change["change"] == "attribute" and change["breaking"] is True


def test_declared_breaking_property() -> None:
    def spec(size: int, note: str) -> dict[str, Any]:
        return AssetSpec(
            namespace="qdrant://h",
            name="docs",
            kind="collection",
            properties={"size": size, "note": note},
            breaking_properties=frozenset({"size"}),
        ).definition()

    assert diff_definitions(spec(384, "a"), spec(384, "b"))["breaking"] is False
    assert diff_definitions(spec(384, "a"), spec(768, "a"))["breaking"] is True


def test_first_version_diff_lists_every_field_as_added() -> None:
    diff = diff_definitions(None, table(FieldSpec(name="id", type="integer")))
    assert diff == {
        "added": [{"name": "id", "type": "integer"}],
        "removed": [],
        "changed": [],
        "breaking": False,
    }
