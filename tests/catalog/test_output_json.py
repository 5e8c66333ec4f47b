"""`echo_json` and `echo_json_items` print exactly what `json.dumps(indent=2)` does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import click
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from catalog.output import echo_json, echo_json_items, json_text

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.lists(st.text(), max_size=4)
    ),
    max_leaves=30,
)


def _stdlib(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, default=str)


class Level(IntEnum):
    LOW = 1


@settings(max_examples=300, deadline=None)
@given(values)
def test_json_text_is_the_json_modules_text(data: Any) -> None:
    assert json_text(data) == _stdlib(data)


def test_unusual_values_take_the_json_modules_way() -> None:
    for data in (
        {"at": datetime(2026, 1, 2, tzinfo=UTC)},
        {1: "int key", None: "none key"},
        [Level.LOW, ("a", 1.5e-05)],
        {"nested": [{"x": [[], {}, float("nan")]}]},
    ):
        assert json_text(data) == _stdlib(data)
        assert json_text(data, "  ") == _stdlib(data).replace("\n", "\n  ")


def _printed(fn: Any, data: Any) -> str:
    @click.command()
    def command() -> None:
        fn(data)

    return CliRunner().invoke(command).output


@settings(max_examples=100, deadline=None)
@given(st.lists(values, max_size=5))
def test_items_print_what_the_whole_list_prints(items: list[Any]) -> None:
    whole = _printed(echo_json, items)
    assert _printed(lambda data: echo_json_items(iter(data)), items) == whole


def test_control_characters_are_escaped_item_by_item() -> None:
    items = [{"title": "a\x9b31mred\u202e"}, "plain"]
    printed = _printed(lambda data: echo_json_items(iter(data)), items)
    assert "\\u009b" in printed and "\\u202e" in printed
    assert printed == _printed(echo_json, items)
    assert json.loads(printed) == items
