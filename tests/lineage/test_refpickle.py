"""Chunks sent from the reading process arrive as they were sent, each ref's contents once."""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lineage.ingest import _evaluated, read_path
from lineage.openlineage import DatasetRef, ParsedEvent
from lineage.refpickle import REF_OVERHEAD, REF_PER_BYTE, RefReceiver, RefSender

#: What a ref carries to the writer: every field but its `facets` (see `Unsent`).
_CARRIED = tuple(f for f in DatasetRef.__slots__ if f != "facets")


def _carried(value: Any) -> Any:
    """A ref, an event or a list of them as the writer sees them: refs without facets."""
    if isinstance(value, DatasetRef):
        return tuple(getattr(value, f) for f in _CARRIED)
    if isinstance(value, ParsedEvent):
        return tuple(_carried(getattr(value, f)) for f in ParsedEvent.__slots__)
    if isinstance(value, list):
        return [_carried(v) for v in value]
    return value


REAL = Path(__file__).parents[1] / "fixtures/external/openlineage"


def _real_items() -> list[Any]:
    """Every event of OpenLineage's own repositories kept in the fixtures (the integration
    tests' expected events of Spark and dbt, the clients' and proxy's wire examples,
    Marquez's), the rejected ones included."""
    items = [i for chunk in _evaluated(read_path(str(REAL)), 10_000) for i in chunk]
    assert sum(i.event is not None for i in items) >= 20
    return items


@pytest.mark.parametrize("budget", [4 * REF_OVERHEAD, 64 * 1024, 16 * 1024 * 1024])
def test_real_events_arrive_as_they_were_sent(budget: int) -> None:
    """The producers' events, sent again and again in shuffled chunks, with a budget small
    enough that refs are let go and their slots taken by others between chunks."""
    items = _real_items()
    rng = random.Random(3)
    sender, receiver = RefSender(budget), RefReceiver()
    for _ in range(40):
        chunk = rng.sample(items, rng.randint(1, len(items)))
        back = receiver.loads(sender.dumps(chunk))
        assert _carried([i.event for i in back]) == _carried([i.event for i in chunk])
        assert [i.raw for i in back] == [i.raw for i in chunk]
        assert [i.result for i in back] == [i.result for i in chunk]
    assert sender.held <= budget
    assert len(receiver.table) <= sender.slots


def test_a_ref_sent_again_costs_a_slot_number() -> None:
    items = [i for i in _real_items() if i.event is not None]
    events = [i.event for i in items]
    sender = RefSender()
    first = len(sender.dumps(events))
    again = len(sender.dumps(events))
    plain = len(pickle.dumps(events, protocol=pickle.HIGHEST_PROTOCOL))
    assert first <= plain * 1.05
    assert again < first * 0.6


def test_a_received_ref_has_no_facets_to_read() -> None:
    """The writer reads what was parsed out of a ref's facets, never the facets: they are
    not sent, and reading them fails instead of finding them empty."""
    ref = DatasetRef("s3://bucket", "a/b", {"schema": {"fields": []}}, fields=[])
    (back,) = RefReceiver().loads(RefSender().dumps([ref]))
    assert back.fields == [] and back.uri == ref.uri
    for read in (lambda f: f["schema"], lambda f: f.get("schema"), list, len, dict):
        with pytest.raises(TypeError, match="no facets"):
            read(back.facets)


def test_only_its_receiver_reads_what_a_sender_pickled() -> None:
    ref = DatasetRef("s3://bucket", "a/b", {"schema": {"fields": []}}, fields=[])
    data = RefSender().dumps([ref])
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(data)


def _ref(n: int, variant: int) -> DatasetRef:
    facets = {"documentation": {"description": "d" * (n * 37 % 500)}}
    return DatasetRef(
        "postgres://db:5432",
        f"t{n}",
        facets,
        fields=[{"name": f"c{k}", "type": "int"} for k in range(n % 4)],
        uri=f"postgres://db:5432/t{n}",
        described=facets,
        symlinks=[("hive", f"t{n}")] if n % 3 == 0 else [],
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, 12), st.integers(0, 2)), max_size=12),
        max_size=12,
    ),
    st.integers(10_000, 60_000),
)
def test_any_sequence_of_refs_arrives_intact(
    messages: list[list[tuple[int, int]]], budget: int
) -> None:
    """Refs shared between events (a dataset named again), their input/output variants
    (the same facets, other `outputFacets`) and refs let go and sent again."""
    bases = {n: _ref(n, 0) for n in range(13)}
    # From a few refs kept (each at most an eighth of the budget) to all 13: refs are let go
    # and their slots taken by others.
    sender, receiver = RefSender(budget), RefReceiver()
    for message in messages:
        refs = []
        for n, variant in message:
            base = bases[n]
            if variant:
                values = [getattr(base, f) for f in DatasetRef.__slots__]
                values[DatasetRef.__slots__.index("io_facets")] = {"stats": {"rows": variant}}
                refs.append(DatasetRef(*values))
            else:
                refs.append(base)
        back = receiver.loads(sender.dumps(refs))
        assert _carried(back) == _carried(refs)
    assert sender.held <= budget


def test_what_a_parsed_ref_costs_is_the_json_it_was_read_from() -> None:
    """A ref the parser read carries the length of its JSON (the parser's cache key), and
    the table counts that, not the JSON written again; a ref built otherwise is measured."""
    import orjson

    refs = [r for i in _real_items() if i.event is not None for r in i.event.outputs]
    assert refs
    for ref in refs[:20]:
        assert ref.size > len(orjson.dumps(ref.facets)) > 0
        sender = RefSender()
        sender.dumps([ref])
        assert sender.held == REF_OVERHEAD + REF_PER_BYTE * ref.size
    built = DatasetRef("s3://bucket", "a/b", {"schema": {"fields": []}}, fields=[])
    sender = RefSender()
    sender.dumps([built])
    assert sender.held == REF_OVERHEAD + REF_PER_BYTE * len(orjson.dumps(built.facets))
